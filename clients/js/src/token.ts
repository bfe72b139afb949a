// Where the connection's token comes from and when a fresh one is due. The SDK reads the
// token's `exp` only to schedule a refresh; it never trusts the token (the server verifies
// it) and never logs it or puts it anywhere but the connection URL and `refresh` commands.

import { RingcastError } from './errors.js';

export type GetToken = () => string | Promise<string>;

/**
 * A JWT's `exp` (Unix seconds), or null for a token that is not a JWT with a numeric
 * `exp`: such a token is simply never refreshed ahead of time.
 */
export function tokenExpiry(token: string): number | null {
    const parts = token.split('.');
    if (parts.length !== 3) {
        return null;
    }
    try {
        const base64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
        const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
        const claims: unknown = JSON.parse(decodeUtf8(atob(padded)));
        if (typeof claims === 'object' && claims !== null &&
            typeof (claims as { exp?: unknown }).exp === 'number') {
            return (claims as { exp: number }).exp;
        }
    } catch {
        // Not base64url JSON: not a JWT we can read; the server will judge it.
    }
    return null;
}

function decodeUtf8(binary: string): string {
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    return new TextDecoder().decode(bytes);
}

/**
 * How long to wait before refreshing a token that expires at `expSeconds`: when 80 % of
 * its remaining lifetime has passed, so a 5-minute token is refreshed a minute before it
 * ends — well ahead of the server's close at `exp` + leeway even if this clock runs late.
 * At least `minimumMs` so that a token already past its `exp` by this clock (a skewed
 * clock, an issuer handing out stale tokens) cannot make a refresh loop.
 */
export function refreshDelayMs(expSeconds: number, nowMs: number, minimumMs = 1000): number {
    const remainingMs = expSeconds * 1000 - nowMs;
    return Math.max(minimumMs, Math.floor(remainingMs * 0.8));
}

/** Holds the current token and fetches new ones; `getToken` absent: the token is fixed. */
export class TokenSource {
    private _token: string | null;
    private _stale = false;

    constructor(token: string | undefined, private readonly _getToken: GetToken | undefined) {
        this._token = token ?? null;
    }

    get canRefresh(): boolean {
        return this._getToken !== undefined;
    }

    get current(): string | null {
        return this._token;
    }

    /** The token was refused or ran out (close 4001): the next `forConnect()` fetches. */
    markStale(): void {
        this._stale = true;
    }

    /**
     * The token for the next connection attempt: the held one while it is fresh, else one
     * from `getToken`. Null when there is neither (an anonymous connection).
     */
    async forConnect(nowMs: number): Promise<string | null> {
        if (this._getToken === undefined) {
            return this._token;
        }
        const exp = this._token === null ? null : tokenExpiry(this._token);
        if (this._token === null || this._stale || (exp !== null && exp * 1000 <= nowMs)) {
            return this.fetch();
        }
        return this._token;
    }

    /** Asks `getToken` for a new token and holds it for later connection attempts. */
    async fetch(): Promise<string> {
        if (this._getToken === undefined) {
            throw new RingcastError('token', 'no getToken option: the token cannot be renewed');
        }
        let token: unknown;
        try {
            token = await this._getToken();
        } catch (e) {
            throw new RingcastError('token', `getToken failed: ${(e as Error)?.message ?? e}`);
        }
        if (typeof token !== 'string' || token.length === 0) {
            throw new RingcastError('token', 'getToken returned no token (a non-empty string)');
        }
        this._token = token;
        this._stale = false;
        return token;
    }
}
