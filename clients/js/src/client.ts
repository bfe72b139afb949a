// RingcastClient: one logical connection to ringcastd's /ws that survives real ones.
//
//   idle ──connect()──▶ connecting ──open──▶ open ──close (not ours)──▶ reconnecting
//                          ▲   │ never opened / connectTimeoutMs           │
//                          │   ▼                                           │
//                          └── reconnecting ◀──────────────────────────────┘
//                              (waits a Backoff delay, then connecting)
//   any state ──close()──▶ closed (final)
//
// On each open the client subscribes again to every channel (with `recover` from the last
// position, see subscription.ts), then sends the commands queued while it had no
// connection; the server answers in that order (docs/protocol.md "Command order").
// Everything runs on the caller's event loop; nothing here blocks or spins.

import { Backoff, type BackoffOptions } from './backoff.js';
import { CommandTable, type CommandOptions } from './commands.js';
import { Emitter } from './emitter.js';
import { RingcastError, isTransient } from './errors.js';
import { namespaceOf, parseFrame, type Envelope, type EventMap, type PresenceEvent,
         type PresenceReply, type ReplyFrame } from './protocol.js';
import { OPEN, resolveWebSocket, type WebSocketConstructor, type WebSocketLike } from './socket.js';
import { Subscription, type SubscribeOptions, type SubscribeResult,
         type SubscriptionHost } from './subscription.js';
import { TokenSource, refreshDelayMs, tokenExpiry, type GetToken } from './token.js';

export interface ClientOptions extends CommandOptions {
    /** A fixed token, sent as `?token=` (docs/security.md "Tokens"). */
    token?: string;
    /**
     * Fetches a fresh token: before a connection when the held one expired or was refused
     * (close 4001, or a handshake that never opened: a browser cannot see a 401), and
     * while connected when 80 % of the token's remaining lifetime has passed (then sent
     * with `refresh`, so the connection and its subscriptions stay).
     */
    getToken?: GetToken;
    /** The WebSocket class; default `globalThis.WebSocket` (browsers, Node 22+). */
    WebSocket?: WebSocketConstructor;
    backoff?: BackoffOptions;
    /** Extra query parameters of the /ws URL (e.g. `{user: '7'}` for `--insecure`). */
    params?: Record<string, string>;
    /** A handshake not open within this is abandoned and retried. Default 10,000 ms. */
    connectTimeoutMs?: number;
    /**
     * After this long without a frame from the server, send a `ping` command; no reply
     * within `commandTimeoutMs` drops the connection and reconnects (a peer gone without
     * a FIN is otherwise noticed only by TCP, minutes later). Default 25,000 ms; 0 = off.
     */
    pingIntervalMs?: number;
    /** Namespaces the server marks `ack` (`--namespace orders:…,ack`). */
    ackNamespaces?: string[];
    /** Acks of one channel within this window go as one cumulative ack. Default 100 ms. */
    ackDelayMs?: number;
    /**
     * Whether to reconnect after a close the application did not ask for. Default: always,
     * except 4001 (token expired) without `getToken`, which no retry can fix.
     */
    reconnect?: (close: CloseInfo) => boolean;
}

export interface CloseInfo {
    code: number;
    reason: string;
    /** Whether the socket had opened (a refused handshake never does). */
    opened: boolean;
}

export type ClientState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** The client's events and their payloads, for `on()`. */
export interface ClientEvents {
    state: ClientState;
    connected: { attempt: number };
    disconnected: CloseInfo & { reconnectInMs: number | null };
    /** Every message handed to the application, on any channel (also `user:` ones). */
    message: Envelope;
    presence: PresenceEvent;
    subscribed: SubscribeResult;
    /** A recovery was asked and failed: reload this channel's state from your backend. */
    recoveryFailed: SubscribeResult;
    /** A subscription the server refused or revoked (`notice` after a refresh). */
    unsubscribed: { channel: string; error: RingcastError };
    /** Offsets skipped on an active subscription (the slow-consumer policy drops 3-4). */
    gap: { channel: string; expected: number; received: number };
    tokenRefreshed: { expiresAt: number | null };
    /** Failures nobody awaits: refused acks, token fetches, throwing handlers. */
    error: unknown;
}

export class RingcastClient implements SubscriptionHost {
    readonly url: string;
    private readonly _options: ClientOptions;
    private readonly _WebSocket: new (url: string) => WebSocketLike;
    private readonly _backoff: Backoff;
    private readonly _commands: CommandTable;
    private readonly _tokens: TokenSource;
    private readonly _events: Emitter<ClientEvents>;
    private readonly _subscriptions = new Map<string, Subscription<never>>();
    private readonly _looseOffsets = new Map<string, number>();
    private readonly _acks = new Map<string, number>();
    private _state: ClientState = 'idle';
    private _ws: WebSocketLike | null = null;
    private _openedAt = 0;
    private _lastFrameAt = 0;
    private _attempt = 0;
    private _timers = new Set<ReturnType<typeof setTimeout>>();
    private _connected: { promise: Promise<void>; resolve: () => void;
                          reject: (e: RingcastError) => void } | null = null;

    constructor(url: string, options: ClientOptions = {}) {
        this.url = url;
        this._options = options;
        this._WebSocket = resolveWebSocket(options.WebSocket);
        this._backoff = new Backoff(options.backoff);
        this._commands = new CommandTable(options);
        this._tokens = new TokenSource(options.token, options.getToken);
        this._events = new Emitter((e) => this._events.emit('error', e));
    }

    get state(): ClientState {
        return this._state;
    }

    /** Commands waiting for a connection (at most `maxQueuedCommands`). */
    get queuedCommands(): number {
        return this._commands.queued;
    }

    on<K extends keyof ClientEvents>(event: K, handler: (payload: ClientEvents[K]) => void):
        () => void {
        return this._events.on(event, handler);
    }

    off<K extends keyof ClientEvents>(event: K, handler: (payload: ClientEvents[K]) => void):
        void {
        this._events.off(event, handler);
    }

    /**
     * Starts connecting (and reconnecting, until `close()`). Resolves once a connection is
     * open; rejects only with `closed`. Bound the wait yourself if you need to.
     */
    connect(): Promise<void> {
        if (this._state === 'closed') {
            return Promise.reject(new RingcastError('closed', 'the client was closed'));
        }
        if (this._state === 'open') {
            return Promise.resolve();
        }
        if (this._connected === null) {
            let resolve!: () => void;
            let reject!: (e: RingcastError) => void;
            const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
            this._connected = { promise, resolve, reject };
        }
        if (this._state === 'idle') {
            void this.attempt();
        }
        return this._connected.promise;
    }

    /** Closes for good: pending commands reject with `closed`, subscriptions end. */
    close(): void {
        if (this._state === 'closed') {
            return;
        }
        this.setState('closed');
        for (const timer of this._timers) {
            clearTimeout(timer);
        }
        this._timers.clear();
        const error = new RingcastError('closed', 'the client was closed');
        this._commands.rejectAll(error);
        for (const subscription of this._subscriptions.values()) {
            subscription.end(null);
        }
        this._subscriptions.clear();
        this._connected?.reject(error);
        this._connected = null;
        const ws = this._ws;
        this._ws = null;
        if (ws !== null) {
            detach(ws);
            ws.close(1000, 'client closed');
        }
    }

    /**
     * Subscribes to `channel` now, or on the next connection, and again after every
     * reconnect. One subscription per channel: a second `subscribe()` for a channel
     * throws (add handlers with `on()` to the first one).
     */
    subscribe<M extends EventMap = EventMap>(channel: string,
                                             onMessage?: SubscribeOptions<M>['onMessage'],
                                             options: SubscribeOptions<M> = {}): Subscription<M> {
        if (this._state === 'closed') {
            throw new RingcastError('closed', 'the client was closed');
        }
        if (this._subscriptions.has(channel)) {
            throw new Error(`already subscribed to '${channel}': add handlers with the ` +
                            "subscription's on(), or unsubscribe() first");
        }
        const ack = options.ack ?? (channel.startsWith('user:') ||
                                    (this._options.ackNamespaces ?? []).includes(namespaceOf(channel)));
        const subscription = new Subscription<M>(channel,
                                                { ...options, onMessage: onMessage ?? options.onMessage },
                                                ack, this);
        this._subscriptions.set(channel, subscription as unknown as Subscription<never>);
        if (this._state === 'open') {
            this.sendSubscribe(subscription as unknown as Subscription<never>);
        }
        return subscription;
    }

    /** Publishes to a channel this connection may publish to; resolves with its offset. */
    async publish(channel: string, event: string, data: unknown,
                  options: { priority?: number } = {}): Promise<{ offset: number }> {
        const fields: Record<string, unknown> = { channel, event, data };
        if (options.priority !== undefined) {
            fields.priority = options.priority;
        }
        const reply = await this.command('publish', fields, true);
        return { offset: reply.offset as number };
    }

    /** Who is subscribed to a presence channel (docs/protocol.md "Presence"). */
    async presence(channel: string): Promise<PresenceReply> {
        const { op: _op, id: _id, ok: _ok, ...answer } = await this.command('presence',
                                                                            { channel }, true);
        return answer as unknown as PresenceReply;
    }

    /** A round trip to the server; rejects with `disconnected` when not connected. */
    async ping(): Promise<void> {
        await this.command('ping', {}, false);
    }

    /** Fetches a token with `getToken` and hands it to the open connection. */
    async refreshToken(): Promise<{ expiresAt: number | null }> {
        const token = await this._tokens.fetch();
        const reply = await this.command('refresh', { token }, false);
        const expiresAt = typeof reply.expiresAt === 'number' ? reply.expiresAt : null;
        this._events.emit('tokenRefreshed', { expiresAt });
        return { expiresAt };
    }

    // ---- SubscriptionHost ------------------------------------------------------------

    async unsubscribe(subscription: Subscription<never>): Promise<void> {
        if (this._subscriptions.get(subscription.channel) !== subscription) {
            return;
        }
        const wasSent = subscription.state === 'subscribing' || subscription.state === 'active';
        subscription.end(null);
        this._subscriptions.delete(subscription.channel);
        this._acks.delete(subscription.channel);
        if (!wasSent || this._state !== 'open') {
            return;
        }
        try {
            await this.command('unsubscribe', { channel: subscription.channel }, false);
        } catch (e) {
            // Not subscribed (404) or no longer connected: either way nothing is left.
            if (!(e instanceof RingcastError && (e.code === 404 || e.code === 'disconnected'))) {
                throw e;
            }
        }
    }

    ackHandled(subscription: Subscription<never>, offset: number): void {
        this.queueAck(subscription.channel, offset);
    }

    delivered(message: Envelope): void {
        this._events.emit('message', message);
    }

    reportHandlerError(error: unknown): void {
        this._events.emit('error', error);
    }

    reportGap(channel: string, expected: number, received: number): void {
        this._events.emit('gap', { channel, expected, received });
    }

    // ---- connection ------------------------------------------------------------------

    private command(op: string, fields: Record<string, unknown>, queue: boolean):
        Promise<ReplyFrame> {
        if (this._state === 'closed') {
            return Promise.reject(new RingcastError('closed', 'the client was closed'));
        }
        return this._commands.issue(op, fields, this.sender(), queue);
    }

    private sender(): ((text: string) => void) | null {
        const ws = this._ws;
        return this._state === 'open' && ws !== null && ws.readyState === OPEN
            ? (text) => ws.send(text) : null;
    }

    private async attempt(): Promise<void> {
        this.setState('connecting');
        this._attempt += 1;
        let token: string | null;
        try {
            token = await this._tokens.forConnect(Date.now());
        } catch (e) {
            this._events.emit('error', e);
            this.retryLater({ code: 0, reason: 'no token', opened: false });
            return;
        }
        if (this._state !== 'connecting') {
            return;  // closed while getToken ran
        }
        const target = new URL(this.url);
        for (const [key, value] of Object.entries(this._options.params ?? {})) {
            target.searchParams.set(key, value);
        }
        if (token !== null) {
            target.searchParams.set('token', token);
        }
        const ws = new this._WebSocket(target.toString());
        this._ws = ws;
        let opened = false;
        const timeout = this.later(this._options.connectTimeoutMs ?? 10_000, () => {
            if (this._ws === ws && !opened) {
                this.lost(ws, { code: 0, reason: 'handshake timed out', opened });
            }
        });
        ws.onopen = () => {
            if (this._ws !== ws) {
                return;
            }
            opened = true;
            this.clear(timeout);
            this.opened();
        };
        ws.onmessage = (event) => {
            if (this._ws === ws && typeof event.data === 'string') {
                this._lastFrameAt = Date.now();
                this.dispatch(event.data);
            }
        };
        ws.onclose = (event) => {
            this.clear(timeout);
            this.lost(ws, { code: event.code, reason: event.reason, opened });
        };
        ws.onerror = () => undefined;  // a close event always follows
    }

    private opened(): void {
        this.setState('open');
        this._openedAt = this._lastFrameAt = Date.now();
        this._looseOffsets.clear();
        for (const subscription of this._subscriptions.values()) {
            this.sendSubscribe(subscription);
        }
        const send = this.sender();
        if (send !== null) {
            this._commands.flush(send);
        }
        this.scheduleRefresh();
        this.schedulePing();
        this._events.emit('connected', { attempt: this._attempt });
        this._attempt = 0;
        this._connected?.resolve();
        this._connected = null;
    }

    // The socket `ws` closed or is abandoned; idempotent per socket.
    private lost(ws: WebSocketLike, close: CloseInfo): void {
        if (this._ws !== ws) {
            return;
        }
        this._ws = null;
        detach(ws);
        if (ws.readyState === OPEN || !close.opened) {
            ws.close();
        }
        for (const timer of this._timers) {
            clearTimeout(timer);
        }
        this._timers.clear();
        this._commands.connectionLost();
        for (const subscription of this._subscriptions.values()) {
            subscription.connectionLost();
        }
        this._acks.clear();
        if (close.opened) {
            this._backoff.connectionEnded(Date.now() - this._openedAt);
        }
        // 4001: the token ran out. A handshake that never opened may have been a 401,
        // which a browser cannot tell from a refused port: fetch a fresh token either way.
        if (close.code === 4001 || !close.opened) {
            this._tokens.markStale();
        }
        this.retryLater(close);
    }

    private retryLater(close: CloseInfo): void {
        if (this._state === 'closed') {
            return;
        }
        const wanted = this._options.reconnect?.(close) ??
            !(close.code === 4001 && !this._tokens.canRefresh);
        if (!wanted) {
            this._events.emit('disconnected', { ...close, reconnectInMs: null });
            this.close();
            return;
        }
        const delay = this._backoff.next();
        this.setState('reconnecting');
        this._events.emit('disconnected', { ...close, reconnectInMs: delay });
        this.later(delay, () => void this.attempt());
    }

    private sendSubscribe(subscription: Subscription<never>): void {
        const ws = this._ws;
        const fields: Record<string, unknown> = { channel: subscription.channel };
        const recover = subscription.recoverField();
        if (recover !== undefined) {
            fields.recover = recover;
        }
        subscription.subscribing();
        this.command('subscribe', fields, false).then((reply) => {
            if (this._subscriptions.get(subscription.channel) !== subscription ||
                subscription.state !== 'subscribing') {
                return;
            }
            const recovered = typeof reply.recovered === 'boolean' ? reply.recovered : undefined;
            const result = subscription.subscribed(reply.epoch as string, reply.offset as number,
                                                   recovered);
            this._events.emit('subscribed', result);
            if (recovered === false) {
                this._events.emit('recoveryFailed', result);
            }
        }, (error: RingcastError) => {
            if (this._subscriptions.get(subscription.channel) !== subscription) {
                return;
            }
            if (isTransient(error)) {
                // Busy (503), over the rate (429) or unanswered: try again on this
                // connection after a backoff-sized pause; a lost connection resubscribes.
                if (error.code !== 'disconnected' && this._ws === ws) {
                    this.later(this._backoff.initialMs, () => {
                        if (this._ws === ws && subscription.state === 'subscribing') {
                            this.sendSubscribe(subscription);
                        }
                    });
                }
                return;
            }
            this.ended(subscription.channel, error);
        });
    }

    private ended(channel: string, error: RingcastError): void {
        const subscription = this._subscriptions.get(channel);
        if (subscription === undefined) {
            return;
        }
        this._subscriptions.delete(channel);
        subscription.end(error);
        this._events.emit('unsubscribed', { channel, error });
    }

    private dispatch(text: string): void {
        const frame = parseFrame(text);
        switch (frame.kind) {
        case 'message':
            return this.deliver(frame.message);
        case 'reply':
            if (!this._commands.settle(frame.reply) && !frame.reply.ok) {
                // `"id":null`: a refused ack, or the rate limit; nobody awaits it.
                const { code = 0, message = 'refused' } = frame.reply.error ?? {};
                this._events.emit('error', new RingcastError(code, message));
            }
            return;
        case 'notice':
            return this.ended(frame.notice.channel,
                              new RingcastError(403, frame.notice.reason));
        case 'presence':
            this._subscriptions.get(frame.event.channel)?.presence(frame.event);
            this._events.emit('presence', frame.event);
            return;
        case 'unknown':
            this._events.emit('error', new Error(`unrecognised frame: ${text.slice(0, 200)}`));
            return;
        }
    }

    private deliver(message: Envelope): void {
        const subscription = this._subscriptions.get(message.channel);
        if (subscription !== undefined) {
            subscription.receive(message);  // calls delivered() unless a duplicate
            return;
        }
        // A channel the application did not subscribe to: the connection's own `user:`
        // channel (offline and priority-1 messages). Deduplicated within this connection
        // only, since without a subscribe reply its epoch is unknown.
        const last = this._looseOffsets.get(message.channel);
        if (last !== undefined && message.offset <= last) {
            return;
        }
        this._looseOffsets.set(message.channel, message.offset);
        this._events.emit('message', message);
        if (message.channel.startsWith('user:')) {
            this.queueAck(message.channel, message.offset);
        }
    }

    // ---- timers ----------------------------------------------------------------------

    private queueAck(channel: string, offset: number): void {
        const had = this._acks.size > 0;
        this._acks.set(channel, Math.max(this._acks.get(channel) ?? 0, offset));
        if (had) {
            return;
        }
        this.later(this._options.ackDelayMs ?? 100, () => {
            const send = this.sender();
            for (const [ch, off] of this._acks) {
                // No id: a cumulative ack needs no answer; a refusal comes with `"id":null`.
                send?.(JSON.stringify({ op: 'ack', channel: ch, offset: off }));
            }
            this._acks.clear();
        });
    }

    private scheduleRefresh(): void {
        const token = this._tokens.current;
        const exp = token === null ? null : tokenExpiry(token);
        if (!this._tokens.canRefresh || exp === null) {
            return;
        }
        const ws = this._ws;
        this.later(refreshDelayMs(exp, Date.now()), () => {
            // Each connection has one refresh chain: one that outlived its connection
            // stops, since opened() started another.
            this.refreshToken().then(() => {
                if (this._ws === ws) {
                    this.scheduleRefresh();
                }
            }, (e) => {
                this._events.emit('error', e);
                // The server closes with 4001 at exp + leeway if no refresh lands; until
                // then try again (the delay is at least a second).
                if (this._ws === ws) {
                    this.scheduleRefresh();
                }
            });
        });
    }

    private schedulePing(): void {
        const interval = this._options.pingIntervalMs ?? 25_000;
        if (interval <= 0) {
            return;
        }
        const ws = this._ws;
        this.later(interval, () => {
            if (this._ws !== ws || ws === null) {
                return;
            }
            if (Date.now() - this._lastFrameAt < interval) {
                return this.schedulePing();
            }
            this.ping().then(() => this.schedulePing(), (e: RingcastError) => {
                if (this._ws === ws && e.code === 'timeout') {
                    this.lost(ws, { code: 0, reason: 'no reply to ping', opened: true });
                }
            });
        });
    }

    private later(ms: number, run: () => void): ReturnType<typeof setTimeout> {
        const timer = setTimeout(() => {
            this._timers.delete(timer);
            run();
        }, ms);
        this._timers.add(timer);
        return timer;
    }

    private clear(timer: ReturnType<typeof setTimeout>): void {
        clearTimeout(timer);
        this._timers.delete(timer);
    }

    private setState(state: ClientState): void {
        if (this._state !== state) {
            this._state = state;
            this._events.emit('state', state);
        }
    }
}

function detach(ws: WebSocketLike): void {
    ws.onopen = ws.onmessage = ws.onclose = null;
    ws.onerror = () => undefined;
}
