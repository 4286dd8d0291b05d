/**
 * The emulator's OAuth side: the service account it made (an RSA key pair, handed out as a
 * key file whose `token_uri` is the emulator's `/token`), the JWT-bearer grant checked the
 * way Google's token endpoint checks it (RS256 signature against the account's public key,
 * `iss` the account, `aud` the token URI, not expired), and the access tokens it issued,
 * which every other call must carry as `Authorization: Bearer …`.
 *
 * @example
 *   const oauth = new EmulatedOAuth('formwork-emulated', `${url}/token`);
 *   oauth.keyFile(); // { type: 'service_account', private_key: '-----BEGIN PRIVATE KEY-----…', token_uri: 'http://127.0.0.1:…/token', … }
 */
import { createVerify, generateKeyPairSync, randomBytes } from 'node:crypto';
import type { GceAnswer } from './wire.js';

/** The emulated service account and its tokens (see the file's comment). */
export class EmulatedOAuth {
  readonly clientEmail: string;
  private readonly privateKeyId = randomBytes(20).toString('hex');
  private readonly publicKey: string;
  private readonly privateKey: string;
  private readonly tokens = new Map<string, number>();

  constructor(
    readonly project: string,
    readonly tokenUri: string,
    private readonly tokenTtlS = 3600,
  ) {
    this.clientEmail = `formwork@${project}.iam.gserviceaccount.com`;
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.publicKey = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    this.privateKey = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  }

  /** The service account key file, as the console downloads it. */
  keyFile(): Record<string, string> {
    return {
      type: 'service_account',
      project_id: this.project,
      private_key_id: this.privateKeyId,
      private_key: this.privateKey,
      client_email: this.clientEmail,
      client_id: BigInt(`0x${this.privateKeyId.slice(0, 15)}`).toString(),
      auth_uri: 'https://accounts.google.com/o/oauth2/auth',
      token_uri: this.tokenUri,
      auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
    };
  }

  /** Answers `POST /token` (form-encoded `grant_type`, `assertion`). */
  token(form: URLSearchParams): GceAnswer {
    const refuse = (error: string, description: string): GceAnswer => ({ status: 400, body: { error, error_description: description } });
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return refuse('unsupported_grant_type', 'Invalid grant_type');
    const parts = (form.get('assertion') ?? '').split('.');
    if (parts.length !== 3) return refuse('invalid_request', 'Invalid JWT: Token must be a short-lived token and in a reasonable timeframe');
    const [header, claims, signature] = parts as [string, string, string];
    let h: { alg?: string };
    let c: { iss?: string; aud?: string; exp?: number; iat?: number; scope?: string };
    try {
      h = JSON.parse(Buffer.from(header, 'base64url').toString()) as typeof h;
      c = JSON.parse(Buffer.from(claims, 'base64url').toString()) as typeof c;
    } catch {
      return refuse('invalid_request', 'Invalid JWT: not JSON');
    }
    if (h.alg !== 'RS256') return refuse('invalid_grant', 'Invalid JWT: alg must be RS256');
    const valid = createVerify('RSA-SHA256').update(`${header}.${claims}`).verify(this.publicKey, Buffer.from(signature, 'base64url'));
    if (!valid) return refuse('invalid_grant', 'Invalid JWT Signature.');
    if (c.iss !== this.clientEmail) return refuse('invalid_grant', 'Invalid JWT: iss is not a known service account');
    if (c.aud !== this.tokenUri) return refuse('invalid_grant', `Invalid JWT: aud must be ${this.tokenUri}`);
    const now = Math.floor(Date.now() / 1000);
    if (typeof c.exp !== 'number' || c.exp < now || (c.iat ?? now) > now + 300) return refuse('invalid_grant', 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.');
    if (!c.scope) return refuse('invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
    const accessToken = `ya29.emu-${randomBytes(24).toString('base64url')}`;
    this.tokens.set(accessToken, Date.now() + this.tokenTtlS * 1000);
    return { body: { access_token: accessToken, expires_in: this.tokenTtlS, token_type: 'Bearer' } };
  }

  /** Whether an Authorization header carries a token this emulator issued and that has not expired. */
  valid(authorization: string | undefined): boolean {
    const m = /^Bearer (\S+)$/.exec(authorization ?? '');
    const until = m ? this.tokens.get(m[1]!) : undefined;
    return until !== undefined && until > Date.now();
  }
}
