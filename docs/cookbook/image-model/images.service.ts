import { Injectable } from '@nestjs/common';
import { NdArray, PoolService } from '@snakepit/nestjs';

/** The pool running image_adapter:ImageAdapter (see this recipe's README). */
export const IMAGES_POOL = 'images';

/** An RGB image as a Nest app holds it: H x W x 3 bytes, row by row (what a decoder such as sharp's `.raw()` gives). */
export interface RgbImage {
  width: number;
  height: number;
  pixels: Uint8Array;
}

export interface Classification {
  label: string;
  logits: Float32Array;
  probabilities: Float32Array;
}

/**
 * The Nest side of the recipe: images go to Python as uint8 NdArrays (no
 * copy, no JSON) and the model's arrays come back as NdArrays.
 */
@Injectable()
export class ImagesService {
  constructor(private readonly pools: PoolService) {}

  async classify(image: RgbImage): Promise<Classification> {
    const { result } = await this.pools.execute<{ label: string; logits: NdArray<'float32'>; probabilities: NdArray<'float32'> }>(
      'classify',
      { image: toArray(image) },
      { pool: IMAGES_POOL },
    );
    return { label: result.label, logits: result.logits.data, probabilities: result.probabilities.data };
  }

  /** One logits row per image: a float32 (N, classes) NdArray. The images must share a size. */
  async classifyBatch(images: readonly RgbImage[]): Promise<NdArray<'float32'>> {
    const [{ width, height }] = images;
    const batch = new Uint8Array(images.length * height * width * 3);
    images.forEach((image, i) => batch.set(toArray(image).data, i * height * width * 3));
    const { result } = await this.pools.execute<NdArray<'float32'>>(
      'classify_batch',
      { images: NdArray.from(batch, [images.length, height, width, 3]) },
      { pool: IMAGES_POOL },
    );
    return result;
  }

  /** The edge map: a grayscale image two pixels smaller each way. */
  async edges(image: RgbImage): Promise<{ width: number; height: number; pixels: Uint8Array }> {
    const { result } = await this.pools.execute<NdArray<'uint8'>>('edges', { image: toArray(image) }, { pool: IMAGES_POOL });
    const [height, width] = result.shape;
    return { width, height, pixels: result.data };
  }
}

/** A uint8 NdArray over the image's bytes (NdArray.from checks that they number height * width * 3). */
function toArray({ width, height, pixels }: RgbImage): NdArray<'uint8'> {
  return NdArray.from(pixels, [height, width, 3]);
}
