import type { TestingModule } from '@nestjs/testing';
import { NdArray, PoolService, type SnakepitError, type SnakepitErrorBody } from '@snakepit/nestjs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { IMAGES_POOL, ImagesService, type RgbImage } from '../../docs/cookbook/image-model/images.service';
import { embeddedSnakepit } from '../helpers/embedded-snakepit';
import { REPO_ROOT, startSampleApp, type ExecuteOutcome, type SampleApp } from '../helpers/sample-app';

jest.setTimeout(90_000);

const RECIPE = join(REPO_ROOT, 'docs', 'cookbook', 'image-model');
const CLASSES = ['sky', 'grass', 'brick'];
const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

/** A deterministic RGB test image (a gradient with a bright square, so there are edges to find). */
function testImage(height: number, width: number, shift = 0): RgbImage {
  const pixels = new Uint8Array(height * width * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inSquare = y >= 2 && y < 5 && x >= 3 && x < 7;
      for (let c = 0; c < 3; c++) pixels[(y * width + x) * 3 + c] = inSquare ? 240 - 20 * c : (x * 19 + y * 7 + c * 53 + shift * 31) % 200;
    }
  }
  return { height, width, pixels };
}

/** numpy's rint: halves to even. */
const rint = (v: number) => (v - Math.floor(v) === 0.5 ? 2 * Math.round(v / 2) : Math.round(v));

/** The recipe's Sobel magnitude, written again here term by term in the same order (so bit for bit). */
function sobel({ height, width, pixels }: RgbImage): number[] {
  const gray = (y: number, x: number) => {
    const i = (y * width + x) * 3;
    return 0.299 * pixels[i] + 0.587 * pixels[i + 1] + 0.114 * pixels[i + 2];
  };
  const out: number[] = [];
  for (let y = 0; y < height - 2; y++) {
    for (let x = 0; x < width - 2; x++) {
      const at = (dy: number, dx: number) => gray(y + dy, x + dx);
      const gx = at(0, 2) - at(0, 0) + 2 * (at(1, 2) - at(1, 0)) + (at(2, 2) - at(2, 0));
      const gy = at(2, 0) - at(0, 0) + 2 * (at(2, 1) - at(0, 1)) + (at(2, 2) - at(0, 2));
      out.push(Math.sqrt(gx * gx + gy * gy));
    }
  }
  return out;
}

/** The classifier's features, in double precision: per-channel mean and std of the normalised image, mean edge / 255. */
function features(image: RgbImage): number[] {
  const n = image.height * image.width;
  const channels = [0, 1, 2].map((c) => Array.from({ length: n }, (_, i) => (image.pixels[i * 3 + c] / 255 - MEAN[c]) / STD[c]));
  const means = channels.map((values) => values.reduce((a, b) => a + b, 0) / n);
  const stds = channels.map((values, c) => Math.sqrt(values.reduce((a, v) => a + (v - means[c]) ** 2, 0) / n));
  const edges = sobel(image);
  return [...means, ...stds, edges.reduce((a, b) => a + b, 0) / edges.length / 255];
}

/** The weights the recipe promises, drawn by the test's own numpy from the documented seed. */
function seededWeights(): { weights: Buffer; bias: Buffer } {
  const script = [
    'import base64, json, numpy as np',
    'rng = np.random.default_rng(14)',
    'w = rng.normal(size=(3, 7)).astype(np.float32)',
    'b = (0.1 * rng.normal(size=3)).astype(np.float32)',
    'print(json.dumps([base64.b64encode(w.tobytes()).decode(), base64.b64encode(b.tobytes()).decode()]))',
  ].join('\n');
  const run = spawnSync(join(REPO_ROOT, '.venv', 'bin', 'python'), ['-c', script], { encoding: 'utf8', timeout: 60_000 });
  if (run.status !== 0) throw new Error(`numpy reference failed: ${run.stderr}`);
  const [weights, bias] = JSON.parse(run.stdout) as [string, string];
  return { weights: Buffer.from(weights, 'base64'), bias: Buffer.from(bias, 'base64') };
}

/**
 * The image-model recipe (docs/cookbook/image-model): its adapter on real
 * Python workers, its Nest service, and the same tools through the sample
 * app's HTTP API with `$ndarray` JSON. Values are checked against numpy run
 * by the test and against the pipeline recomputed in TypeScript.
 */
describe('cookbook: serving an image model, arrays in and out', () => {
  let moduleRef: TestingModule;
  let images: ImagesService;
  let pools: PoolService;
  let logits: (image: RgbImage) => number[];

  beforeAll(async () => {
    moduleRef = await embeddedSnakepit(
      'cookbook-images',
      [{ name: IMAGES_POOL, size: 1, profile: 'thread', threadsPerWorker: 2, adapter: 'image_adapter:ImageAdapter', env: { PYTHONPATH: RECIPE } }],
      [ImagesService],
    );
    images = moduleRef.get(ImagesService);
    pools = moduleRef.get(PoolService);
    const { result } = await pools.execute<{ weights: NdArray<'float32'>; bias: NdArray<'float32'> }>('model_info', {}, { pool: IMAGES_POOL });
    logits = (image) => {
      const f = features(image);
      return [0, 1, 2].map((k) => f.reduce((sum, value, j) => sum + result.weights.data[k * 7 + j] * value, result.bias.data[k]));
    };
  });

  afterAll(async () => {
    await moduleRef?.close();
  });

  it("draws its weights at setup from the documented seed: float32 arrays out, equal to numpy's", async () => {
    const { result } = await pools.execute<{ classes: string[]; seed: number; weights: NdArray; bias: NdArray }>('model_info', {}, { pool: IMAGES_POOL });
    const reference = seededWeights();
    expect([result.classes, result.seed, result.weights.dtype, result.weights.shape, result.bias.shape]).toEqual([CLASSES, 14, 'float32', [3, 7], [3]]);
    expect(result.weights.bytes.equals(reference.weights)).toBe(true);
    expect(result.bias.bytes.equals(reference.bias)).toBe(true);
  });

  it('classifies an image: float32 logits equal to the pipeline recomputed here, softmax probabilities, the argmax label', async () => {
    const image = testImage(8, 10);
    const out = await images.classify(image);
    expect(out.logits).toBeInstanceOf(Float32Array);
    const expected = logits(image);
    Array.from(out.logits).forEach((value, k) => expect(value).toBeCloseTo(expected[k], 4));
    const exps = expected.map((v) => Math.exp(v - Math.max(...expected)));
    Array.from(out.probabilities).forEach((p, k) => expect(p).toBeCloseTo(exps[k] / exps.reduce((a, b) => a + b), 5));
    expect(out.label).toBe(CLASSES[expected.indexOf(Math.max(...expected))]);
  });

  it('classifies a batch (N, H, W, 3) in one call: one logits row per image, each as the single call gives', async () => {
    const batch = [testImage(8, 10, 0), testImage(8, 10, 1), testImage(8, 10, 2)];
    const out = await images.classifyBatch(batch);
    expect([out.dtype, out.shape]).toEqual(['float32', [3, 3]]);
    batch.forEach((image, i) => {
      const expected = logits(image);
      expected.forEach((value, k) => expect(out.data[i * 3 + k]).toBeCloseTo(value, 4));
    });
    // Different images, different answers: the batch is not one image repeated.
    expect(out.data[0]).not.toBeCloseTo(out.data[3], 3);
  });

  it('returns the edge map as a uint8 image, byte for byte the Sobel magnitude computed here', async () => {
    const image = testImage(8, 10);
    const out = await images.edges(image);
    expect([out.height, out.width]).toEqual([6, 8]);
    expect(out.pixels).toBeInstanceOf(Uint8Array);
    expect(Array.from(out.pixels)).toEqual(sobel(image).map((v) => Math.min(255, rint(v))));
    expect(new Set(out.pixels).size).toBeGreaterThan(3);
  });

  describe('bad input: INVALID_ARGUMENTS, the worker kept', () => {
    let pid: number;
    const workerPid = () => pools.poolInfo().find((pool) => pool.name === IMAGES_POOL)!.workers[0].pid;

    beforeAll(() => {
      pid = workerPid();
    });

    afterEach(() => {
      expect(workerPid()).toBe(pid);
    });

    const refusal = (tool: string, args: Record<string, unknown>) =>
      pools.execute(tool, args, { pool: IMAGES_POOL }).catch((error: unknown) => error as SnakepitError);

    it('a float32 image where the tool declares uint8', async () => {
      const error = (await refusal('classify', { image: NdArray.from(new Float32Array(60), [4, 5, 3]) })) as SnakepitError;
      expect(error.code).toBe('INVALID_ARGUMENTS');
      expect(error.details.errors).toEqual([expect.objectContaining({ path: '$.image', problem: 'wrong_dtype', expected: 'uint8', got: 'float32' })]);
    });

    it('an image that is not (H, W, 3), and pixels that do not fit the size', async () => {
      const error = (await refusal('edges', { image: NdArray.from(new Uint8Array(80), [4, 5, 4]) })) as SnakepitError;
      expect(error.code).toBe('INVALID_ARGUMENTS');
      expect(error.details).toMatchObject({ expected: '(H, W, 3)', shape: [4, 5, 4] });
      await expect(images.edges({ height: 4, width: 5, pixels: new Uint8Array(10) })).rejects.toMatchObject({ code: 'INVALID_ARGUMENTS' });
    });
  });
});

/** The same adapter behind the sample app's HTTP API: an image as `$ndarray` JSON in, the edge map as `$ndarray` out. */
describe('cookbook: the image model over HTTP with $ndarray JSON', () => {
  let app: SampleApp;

  beforeAll(async () => {
    app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '1', SNAKEPIT_ADAPTER: 'image_adapter:ImageAdapter', PYTHONPATH: RECIPE });
  });

  afterAll(async () => {
    await app?.stop();
  });

  it('edges: base64 uint8 pixels in, a uint8 (H - 2, W - 2) image out', async () => {
    const image = testImage(8, 10);
    const ndarray = { dtype: 'uint8', shape: [8, 10, 3], data: Buffer.from(image.pixels).toString('base64') };
    const { status, body } = await app.execute<ExecuteOutcome>('edges', { image: { $ndarray: ndarray } });
    expect(status).toBe(200);
    const result = (body.result as { $ndarray: { dtype: string; shape: number[]; data: string } }).$ndarray;
    expect([result.dtype, result.shape]).toEqual(['uint8', [6, 8]]);
    expect(Array.from(Buffer.from(result.data, 'base64'))).toEqual(sobel(image).map((v) => Math.min(255, rint(v))));
  });

  it('a JSON list for the image is refused with a hint to send an array', async () => {
    const { status, body } = await app.execute<SnakepitErrorBody>('classify', { image: [[[0, 0, 0]]] });
    expect(status).toBe(400);
    expect(body.error.details.errors).toEqual([expect.objectContaining({ path: '$.image', expected: 'ndarray[uint8]', got: 'array' })]);
  });
});
