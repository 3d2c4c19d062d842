/**
 * `lumen serve`: the OpenAI-compatible server and chat page for a trained model.
 */
import { parse, num } from '../args.ts';
import { InputError } from '../../util/errors.ts';
import { DEFAULT_LIMITS } from '../../serve/limits.ts';
import { loadInferenceModel } from '../../serve/load.ts';
import { createServer } from '../../serve/server.ts';
import { runUntilSignal } from '../../serve/signals.ts';

const OPTIONS = {
  model: { type: 'string', help: 'directory of the model to serve (required)' },
  host: { type: 'string', default: '127.0.0.1', help: 'address to listen on (0.0.0.0 for every interface)' },
  port: { type: 'string', default: '8080', help: 'port to listen on (0 = any free port)' },
  'api-key': { type: 'string', help: 'require Authorization: Bearer KEY on /v1/* and /metrics (default: env LUMEN_API_KEY, else none)' },
  'max-sequences': { type: 'string', default: String(DEFAULT_LIMITS.maxSequences), help: 'sequences generating at once (the batch)' },
  'max-queue': { type: 'string', default: String(DEFAULT_LIMITS.maxQueue), help: 'requests waiting for a slot before 429' },
  'max-tokens': { type: 'string', default: String(DEFAULT_LIMITS.maxTokens), help: 'largest max_tokens a request may ask for (also the default)' },
  'max-prompt-tokens': { type: 'string', default: '0', help: 'largest prompt in positions (0 = the model context)' },
  'max-body-bytes': { type: 'string', default: String(DEFAULT_LIMITS.maxBodyBytes), help: 'largest request body' },
  'max-image-bytes': { type: 'string', default: String(DEFAULT_LIMITS.maxImageBytes), help: 'largest encoded image' },
  'max-image-pixels': { type: 'string', default: String(DEFAULT_LIMITS.maxImagePixels), help: 'largest image width x height' },
  'max-images': { type: 'string', default: String(DEFAULT_LIMITS.maxImages), help: 'images per request' },
  'timeout-ms': { type: 'string', default: String(DEFAULT_LIMITS.requestTimeoutMs), help: 'request timeout' },
  'shutdown-grace-ms': { type: 'string', default: String(DEFAULT_LIMITS.shutdownGraceMs), help: 'on SIGTERM, time in-flight requests get to finish' },
} as const;

export async function run(argv: string[]): Promise<number> {
  const p = parse('serve', '--model DIR [options]', OPTIONS, argv,
    'Serves a model over the OpenAI API (/v1/chat/completions, /v1/completions, /v1/models), with /health, /metrics and a chat page at /.');
  if (!p) return 0;
  const v = p.values;
  if (!v.model) throw new InputError("--model: required; the directory of a trained model. Run 'lumen serve --help'.");
  const int = (name: keyof typeof OPTIONS, min: number) => num(name, v[name] as string | undefined, Number((OPTIONS[name] as { default?: string }).default), { int: true, min });
  const limits = {
    maxSequences: int('max-sequences', 1), maxQueue: int('max-queue', 0), maxTokens: int('max-tokens', 1),
    maxPromptTokens: int('max-prompt-tokens', 0), maxBodyBytes: int('max-body-bytes', 1), maxImageBytes: int('max-image-bytes', 1),
    maxImagePixels: int('max-image-pixels', 1), maxImages: int('max-images', 1), requestTimeoutMs: int('timeout-ms', 1),
    shutdownGraceMs: int('shutdown-grace-ms', 1),
  };
  const port = num('port', v.port, 8080, { int: true, min: 0, max: 65535 });
  const apiKey = v['api-key'] ?? process.env['LUMEN_API_KEY'] ?? undefined;
  const model = await loadInferenceModel(v.model);
  const server = createServer({ model, apiKey: apiKey || undefined, limits });
  const url = await server.listen(port, v.host ?? '127.0.0.1');
  console.log(`lumen serve: ${model.name} (context ${model.contextLength}${model.vision ? ', images' : ''}) at ${url}/`);
  console.log(`  chat page  ${url}/\n  OpenAI API ${url}/v1  (${apiKey ? 'API key required' : 'no API key'})\n  metrics    ${url}/metrics`);
  await runUntilSignal(server);
  return 0;
}
