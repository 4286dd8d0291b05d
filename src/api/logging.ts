import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

/**
 * The server's log: JSON lines (pino) with secrets censored wherever they appear. Apart
 * from api/app.ts so the server can log before it loads the HTTP layer.
 *
 * @example
 *   const logger = createLogger({ level: 'info' });
 *   logger.info({ token: 'abc' }, 'hello'); // {"token":"[redacted]","msg":"hello",…}
 */

/** Fields whose values never reach a log line, at any depth up to three. */
const SENSITIVE = ['data', 'token', 'privateKey', 'password', 'passphrase', 'secret', 'secretKey', 'secretAccessKey', 'clientSecret', 'secrets', 'ciphertext'];
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'request.headers.authorization',
  ...SENSITIVE.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]),
];

export function createLogger(opts: { level?: string; destination?: DestinationStream } = {}): Logger {
  const options: LoggerOptions = { level: opts.level ?? 'info', redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
