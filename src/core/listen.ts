/**
 * The `HOST:PORT` form every listening command takes (`formwork server --listen`,
 * `formwork emulate … --listen`).
 */
import { FormworkError } from './errors.js';

/**
 * Parses `HOST:PORT` (`[::1]:7480` for IPv6; `:7480` for loopback; port 0 picks a free one).
 *
 * @example
 *   parseListen('127.0.0.1:7480'); // { host: '127.0.0.1', port: 7480 }
 *   parseListen(':0'); // { host: '127.0.0.1', port: 0 }
 */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new FormworkError('VALIDATION', `listen address must be HOST:PORT (e.g. 127.0.0.1:7480 or [::1]:7480; port 0 picks a free one), got ${JSON.stringify(listen)}`);
  }
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}
