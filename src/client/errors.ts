import { ERROR_CODES, FormworkError, type ErrorCode } from '../core/errors.js';
import type { TransportResponse } from './transport.js';

// The API's error answers as FormworkErrors, whatever the transport that brought them.

/**
 * A FormworkError that came from an HTTP response; `status` is the HTTP status.
 *
 * @example
 *   catch (e) { if (e instanceof ApiError && e.status === 404) … }
 */
export class ApiError extends FormworkError {
  readonly status: number;
  constructor(status: number, code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, details);
    this.name = 'ApiError';
    this.status = status;
  }
}

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'VALIDATION',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  412: 'VERSION_MISMATCH',
  413: 'BODY_TOO_LARGE',
  422: 'VALIDATION',
};

/**
 * The FormworkError of an error answer: the server's code, message and details when it
 * sent them, else by status.
 *
 * @example
 *   if (res.status >= 400) throw apiError(res);
 */
export function apiError(res: TransportResponse): ApiError {
  let code: ErrorCode | undefined;
  let message: string | undefined;
  let details: Record<string, unknown> | undefined;
  try {
    const body = JSON.parse(res.text) as { error?: { code?: string; message?: string; details?: Record<string, unknown> } };
    if (body?.error) {
      if (body.error.code && body.error.code in ERROR_CODES) code = body.error.code as ErrorCode;
      message = body.error.message;
      details = body.error.details;
      if (body.error.code && !code) details = { ...(details ?? {}), serverCode: body.error.code };
    }
  } catch {
    /* not JSON: use the status */
  }
  code ??= CODE_BY_STATUS[res.status] ?? 'INTERNAL';
  message ??= `HTTP ${res.status}${res.text.trim() ? `: ${res.text.trim().slice(0, 200)}` : ''}`;
  return new ApiError(res.status, code, message, details);
}
