/**
 * Who may call the API: the roles a user holds and how long a token may live. Shared by
 * the store (which enforces them), the API (whose schemas state them) and the client.
 *
 * @example
 *   USER_ROLES.includes('operator'); // true
 */

/** A user's role: admin ⊃ operator ⊃ viewer. */
export type UserRole = 'admin' | 'operator' | 'viewer';

/**
 * Every user role, strongest first.
 *
 * @example
 *   for (const r of USER_ROLES) console.log(r); // admin, operator, viewer
 */
export const USER_ROLES: UserRole[] = ['admin', 'operator', 'viewer'];

/**
 * The longest lifetime a token may be given: 10 years (a later expiry is not a representable date for long).
 *
 * @example
 *   expiresInSeconds <= MAX_TOKEN_LIFETIME_SECONDS;
 */
export const MAX_TOKEN_LIFETIME_SECONDS = 10 * 365 * 24 * 3600;
