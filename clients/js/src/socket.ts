// The part of the WebSocket interface the client uses: the browser's (and Node 22's)
// global WebSocket has it, and so has the npm `ws` package, which Node 18 and 20 need
// (they have no global one).

/** What the client calls on a socket; the browser's WebSocket and npm `ws` both fit. */
export interface WebSocketLike {
    readonly readyState: number;
    onopen: ((event: unknown) => void) | null;
    onmessage: ((event: { data: unknown }) => void) | null;
    onclose: ((event: { code: number; reason: string }) => void) | null;
    onerror: ((event: unknown) => void) | null;
    send(data: string): void;
    close(code?: number, reason?: string): void;
}

/**
 * A WebSocket class: `globalThis.WebSocket`, or `WebSocket` from npm `ws`. Typed loosely
 * on purpose: the DOM's and `ws`'s declarations differ in their event types, and both
 * must be accepted without a cast.
 */
export type WebSocketConstructor = new (url: string) => object;

/** readyState of an open socket (the same value in every implementation). */
export const OPEN = 1;

/** The class to use: the option, else the global one; a sentence when there is neither. */
export function resolveWebSocket(option: WebSocketConstructor | undefined):
    new (url: string) => WebSocketLike {
    const found = option ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (found === undefined) {
        throw new TypeError('no WebSocket class: this runtime has no global WebSocket ' +
                            '(Node before 22); pass one, e.g. ' +
                            "`new RingcastClient(url, { WebSocket: (await import('ws')).WebSocket })`");
    }
    return found as new (url: string) => WebSocketLike;
}
