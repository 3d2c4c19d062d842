/**
 * Images of a request: `image_url` data URLs decoded (src/io/image.ts) into the model's input
 * resolution, with the server's limits applied before any decoding. Remote URLs are refused:
 * the server fetches nothing.
 */
import { decodeImage, imageFromDataUrl } from '../io/image.ts';
import { InputError } from '../util/errors.ts';
import { ApiError } from './http.ts';
import type { ServerLimits } from './limits.ts';
import type { ImageInput, InferenceModel } from './model.ts';

/** Decodes one data URL; `param` names it in errors (messages[0].content[1].image_url.url). */
export async function requestImage(url: string, model: InferenceModel, limits: ServerLimits, param: string): Promise<ImageInput> {
  if (!model.vision) throw new ApiError(400, `${param}: model '${model.name}' does not accept images`, 'invalid_request_error', param, 'images_not_supported');
  try {
    const { bytes } = imageFromDataUrl(url, { maxBytes: limits.maxImageBytes });
    const img = await decodeImage(bytes, { size: model.vision.imageSize, maxBytes: limits.maxImageBytes, maxPixels: limits.maxImagePixels, name: param });
    return { pixels: img.pixels };
  } catch (e) {
    if (e instanceof InputError) {
      const msg = e.message.startsWith(param) ? e.message : `${param}: ${e.message}`;
      throw new ApiError(400, msg, 'invalid_request_error', param, 'invalid_image');
    }
    throw e;
  }
}
