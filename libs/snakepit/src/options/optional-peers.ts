import { SnakepitConfigError } from './resolve-options';

/**
 * Fails with the install command when an optional peer package of a feature is
 * missing, instead of Node's bare "Cannot find module" from deep inside the
 * feature. Peers are resolved from this package's location, where the feature's
 * own `require` looks, and not loaded.
 */
export function requirePeers(feature: string, packages: readonly string[]): void {
  const missing = packages.filter((name) => !isInstalled(name));
  if (missing.length === 0) return;
  const noun = missing.length === 1 ? 'package' : 'packages';
  throw new SnakepitConfigError([`${feature} needs the optional peer ${noun} ${missing.join(' and ')}: npm install ${packages.join(' ')}`]);
}

function isInstalled(name: string): boolean {
  try {
    require.resolve(name);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return false;
    throw error;
  }
}
