// Every failure the SDK hands to the application is a RingcastError: a server refusal
// carries the server's code and message (docs/protocol.md "Errors are replies"), a failure
// on this side one of the named client codes below.

/**
 * Client-side failures:
 * * `timeout` — no reply within `commandTimeoutMs`. The command may still have taken
 *   effect (a publish may have been ordered): the outcome is unknown.
 * * `disconnected` — the connection closed after the command was sent and before its
 *   reply; the outcome is unknown as for `timeout`. Sent commands are never re-sent.
 * * `queue_full` — the command was refused at once: the outgoing queue held
 *   `maxQueuedCommands` commands waiting for a connection.
 * * `closed` — `close()` was called; nothing more will be sent.
 * * `token` — `getToken` threw or returned something that is not a non-empty string.
 */
export type ClientErrorCode = 'timeout' | 'disconnected' | 'queue_full' | 'closed' | 'token';

/** A server code (400, 401, 403, 404, 429, 503) or a client-side one. */
export type ErrorCode = number | ClientErrorCode;

export class RingcastError extends Error {
    /** The server's HTTP-like code, or a client-side code. */
    readonly code: ErrorCode;
    /** The server's message (`"publish not allowed"`) or a sentence saying what failed. */
    readonly reason: string;

    constructor(code: ErrorCode, reason: string) {
        super(`${code}: ${reason}`);
        this.name = 'RingcastError';
        this.code = code;
        this.reason = reason;
    }
}

/**
 * Whether retrying the same command later may succeed: the server was busy (503), the
 * command was over the rate or held too long (429), or nothing came back in time.
 */
export function isTransient(error: RingcastError): boolean {
    return error.code === 503 || error.code === 429 || error.code === 'timeout' ||
           error.code === 'disconnected';
}
