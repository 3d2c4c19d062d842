/**
 * `lumen chat --model DIR --image a.png [--image b.png] "question"`: answers a question about
 * images with a multimodal model, streaming the answer to stdout.
 *
 * The images come before the question text, in the order given (after it for a model trained with
 * the question first, `imagePlacement: 'last'`), unless the question holds `<image>` tags (LLaVA
 * style): then each tag is replaced by the next image, so images and text can be interleaved
 * ("compare <image> with <image>").
 */
import { parse, num } from '../args.ts';
import { loadMultimodal, readMultimodalConfig, trainedImagePlacement, type ContentPart } from '../../models/multimodal.ts';
import { decodeImageFile } from '../../io/image.ts';
import { IMAGE_TAG } from '../../data/llava.ts';
import { InputError } from '../../util/errors.ts';

const OPTIONS = {
  model: { type: 'string', help: 'multimodal model directory (config.json with a vision section, model.safetensors, tokenizer.json)' },
  image: { type: 'string', multiple: true, help: 'image file (PNG, JPEG, WebP, GIF); repeatable' },
  system: { type: 'string', help: 'system message' },
  'max-tokens': { type: 'string', help: 'most tokens to generate', default: '64' },
  temperature: { type: 'string', help: 'sampling temperature (0 = greedy)', default: '0' },
  'top-k': { type: 'string', help: 'keep the k most likely tokens (0 = all)', default: '0' },
  'top-p': { type: 'string', help: 'nucleus sampling threshold', default: '1' },
  seed: { type: 'string', help: 'random seed', default: '0' },
} as const;

/**
 * Builds the content parts: images at `<image>` tags; without tags, all images before the question
 * (`placement` 'first') or after it ('last'), as the model was trained.
 */
export function chatParts(question: string, images: Float32Array[], placement: 'first' | 'last' = 'first'): ContentPart[] {
  const pieces = question.split(IMAGE_TAG);
  const tags = pieces.length - 1;
  if (tags === 0) {
    const imageParts = images.map((pixels) => ({ type: 'image' as const, pixels }));
    const text = question ? [{ type: 'text' as const, text: question }] : [];
    return placement === 'last' ? [...text, ...imageParts] : [...imageParts, ...text];
  }
  if (tags !== images.length) throw new InputError(`the question has ${tags} ${IMAGE_TAG} tag(s) but ${images.length} --image file(s) were given`);
  const parts: ContentPart[] = [];
  pieces.forEach((text, i) => {
    if (text) parts.push({ type: 'text', text });
    if (i < images.length) parts.push({ type: 'image', pixels: images[i]! });
  });
  return parts;
}

export async function run(argv: string[]): Promise<number> {
  const p = parse('chat', '--model DIR [--image FILE ...] "question"', OPTIONS, argv,
    'Answers a question about images with a multimodal model (from `lumen train --config mm-small`), streaming the answer.');
  if (!p) return 0;
  const v = p.values;
  if (!v.model) throw new InputError('--model DIR is required');
  if (p.positionals.length === 0) throw new InputError('give the question as an argument, e.g. lumen chat --model DIR --image a.png "what color is the circle?"');
  const question = p.positionals.join(' ');
  const model = loadMultimodal(v.model);
  const size = model.config.vision.imageSize;
  const images: Float32Array[] = [];
  for (const f of v.image ?? []) images.push((await decodeImageFile(f, { size })).pixels);
  const parts = chatParts(question, images, trainedImagePlacement(readMultimodalConfig(v.model)));
  model.answer(parts, {
    maxTokens: num('max-tokens', v['max-tokens'], 64, { min: 1, int: true }),
    temperature: num('temperature', v.temperature, 0, { min: 0 }),
    topK: num('top-k', v['top-k'], 0, { min: 0, int: true }),
    topP: num('top-p', v['top-p'], 1, { min: 0, max: 1 }),
    seed: num('seed', v.seed, 0, { int: true }),
    system: v.system,
    onText: (t) => process.stdout.write(t),
  });
  process.stdout.write('\n');
  return 0;
}
