/**
 * The Python side of `doctor`: two scripts run through the interpreter under
 * test (after PROBE_PREAMBLE), and the shapes of the JSON they answer with.
 */

export type Attempt<T> = { ok: true; value: T } | { ok: false; error: string };

/** The Python packages a worker imports, by distribution name, with the module that proves each is importable. */
export const REQUIRED_PACKAGES = {
  grpcio: 'grpc',
  'grpcio-health-checking': 'grpc_health.v1.health',
  protobuf: 'google.protobuf',
} as const;

export type RequiredPackage = keyof typeof REQUIRED_PACKAGES;

export interface EnvironmentAnswer {
  version: [number, number, number];
  executable: string;
  prefix: string;
  /** A venv, virtualenv or conda environment rather than a system-wide interpreter. */
  isolated: boolean;
  packages: Record<RequiredPackage, Attempt<string>>;
  /** Where snakepit_bridge is and the version its _version.py declares. */
  bridge: Attempt<{ version: string; location: string }>;
  /** Importing the generated stubs: protobuf and grpcio check there that they can run them. */
  stubs: Attempt<string>;
}

export const ENVIRONMENT_PROBE = `
import importlib.util
import os
import runpy


def installed(module, distribution):
    def probe():
        __import__(module)
        from importlib.metadata import version
        return version(distribution)
    return probe


def bridge():
    # Found and versioned without importing it: importing it loads the stubs, which are checked on their own.
    spec = importlib.util.find_spec("snakepit_bridge")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("No module named 'snakepit_bridge'")
    location = list(spec.submodule_search_locations)[0]
    return {"version": runpy.run_path(os.path.join(location, "_version.py"))["__version__"], "location": location}


def stubs():
    from snakepit_bridge._proto import bridge_pb2_grpc  # imports bridge_pb2, where protobuf checks its version
    return bridge_pb2_grpc.GRPC_GENERATED_VERSION


answer({
    "version": list(sys.version_info[:3]),
    "executable": sys.executable,
    "prefix": sys.prefix,
    "isolated": sys.prefix != getattr(sys, "base_prefix", sys.prefix) or os.path.isdir(os.path.join(sys.prefix, "conda-meta")),
    "packages": dict((name, attempt(installed(module, name))) for name, module in json.loads(sys.argv[1]).items()),
    "bridge": attempt(bridge),
    "stubs": attempt(stubs),
})
`;

/** The probe's arguments: the packages to look for. */
export const environmentProbeArgs = (): string[] => [JSON.stringify(REQUIRED_PACKAGES)];

export interface AdapterAnswer {
  tools: Array<{ name: string; streaming: boolean }>;
  threadSafe: boolean;
}

/** Loads the adapter exactly as the worker does (load_adapter, then discover_tools), without running its setup(). */
export const ADAPTER_PROBE = `
def describe(spec):
    from snakepit_bridge.adapter import discover_tools, load_adapter
    adapter = load_adapter(spec)
    tools = discover_tools(adapter)
    return {
        "tools": [{"name": name, "streaming": definition.streaming} for name, definition in sorted(tools.items())],
        "threadSafe": bool(adapter.thread_safe),
    }


answer(attempt(lambda: describe(sys.argv[1])))
`;

type Guard<T> = (value: unknown) => value is T;

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isString = (value: unknown): value is string => typeof value === 'string';

export function isAttempt<T>(value: unknown, isValue: Guard<T>): value is Attempt<T> {
  if (!isRecord(value)) return false;
  return value.ok === true ? isValue(value.value) : value.ok === false && isString(value.error);
}

const isBridge = (value: unknown): value is { version: string; location: string } => isRecord(value) && isString(value.version) && isString(value.location);

export function isEnvironmentAnswer(value: unknown): value is EnvironmentAnswer {
  if (!isRecord(value) || !isRecord(value.packages)) return false;
  const { packages } = value;
  return (
    Array.isArray(value.version) &&
    value.version.length === 3 &&
    value.version.every(Number.isInteger) &&
    isString(value.executable) &&
    isString(value.prefix) &&
    typeof value.isolated === 'boolean' &&
    Object.keys(REQUIRED_PACKAGES).every((name) => isAttempt(packages[name], isString)) &&
    isAttempt(value.bridge, isBridge) &&
    isAttempt(value.stubs, isString)
  );
}

export const isAdapterAnswer = (value: unknown): value is AdapterAnswer =>
  isRecord(value) &&
  typeof value.threadSafe === 'boolean' &&
  Array.isArray(value.tools) &&
  value.tools.every((tool) => isRecord(tool) && isString(tool.name) && typeof tool.streaming === 'boolean');
