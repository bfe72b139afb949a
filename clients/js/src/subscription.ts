// One channel the application subscribed to, kept across connections.
//
//   waiting ──subscribe sent──▶ subscribing ──ok reply──▶ active
//      ▲                            │                       │
//      └──── connection lost ───────┴───────────────────────┘
//   any state ──unsubscribe() / refused / notice "unsubscribed" / close()──▶ ended
//
// `seen` is the position of the last message handed to the handlers: messages at or below
// it are duplicates (an ack resend, a replay overlapping what arrived before) and are
// dropped. `handled` is the last offset whose handlers finished (their promises settled),
// in order: acks confirm it, and a channel with acks recovers from it, so nothing the
// application had not finished is lost with a connection (docs/protocol.md "Acks").
// Messages that arrive while `subscribing` wait for the reply and are then judged against
// the position it names.

import type { ChannelMessage, Envelope, EventMap, Position, PresenceEvent } from './protocol.js';
import type { RingcastError } from './errors.js';

export type RecoverOption =
    | boolean
    | Position
    | { since: number };

export interface SubscribeResult {
    channel: string;
    /** The channel's epoch and the offset after which messages follow. */
    epoch: string;
    offset: number;
    /** Present when recovery was asked: whether every missed message follows. */
    recovered?: boolean;
    /** False for the first subscribe, true for one made again after a reconnect. */
    resubscribed: boolean;
}

export interface SubscribeOptions<M extends EventMap> {
    /**
     * `true` (default): after a reconnect, ask for what was missed from the last position
     * (`recover` with epoch and offset). `false`: subscribe again from now on. A position
     * or `{since: ms}` asks for recovery on the first subscribe too (a position kept
     * from an earlier page load, or a time for another node), then behaves as `true`.
     */
    recover?: RecoverOption;
    /**
     * Acknowledge each message once its handlers finished (docs/protocol.md "Acks").
     * Default: true for `user:` channels and for channels whose namespace is in the
     * client's `ackNamespaces`.
     */
    ack?: boolean;
    /** The channel's messages, in offset order, each once. */
    onMessage?: (message: ChannelMessage<M>) => unknown;
    onSubscribed?: (result: SubscribeResult) => void;
    /**
     * Recovery was asked and the server could not give every missed message (new epoch
     * after a restart, history evicted): reload the channel's state from your backend.
     */
    onRecoveryFailed?: (result: SubscribeResult) => void;
    /** The subscription ended without `unsubscribe()`: refused, or revoked by a refresh. */
    onEnded?: (error: RingcastError) => void;
    onPresence?: (event: PresenceEvent) => void;
}

export type SubscriptionState = 'waiting' | 'subscribing' | 'active' | 'ended';

/** What the client gives a subscription to act on the connection. */
export interface SubscriptionHost {
    unsubscribe(subscription: Subscription<never>): Promise<void>;
    ackHandled(subscription: Subscription<never>, offset: number): void;
    /** A message was handed to this subscription's handlers (not a duplicate). */
    delivered(message: Envelope): void;
    reportHandlerError(error: unknown): void;
    reportGap(channel: string, expected: number, received: number): void;
}

type Handler = (data: unknown, message: Envelope) => unknown;

export class Subscription<M extends EventMap = EventMap> {
    readonly channel: string;
    readonly ack: boolean;
    state: SubscriptionState = 'waiting';
    /** Resolves with the first subscribe's result; rejects if it is refused. */
    readonly ready: Promise<SubscribeResult>;
    /** Messages dropped as duplicates (offset at or below the last one handed over). */
    duplicates = 0;

    private _seen: Position | null = null;
    private _handled: Position | null = null;
    private _recover: RecoverOption;
    private _subscribedOnce = false;
    private _buffer: Envelope[] = [];
    private _chain: Promise<void> = Promise.resolve();
    private readonly _handlers = new Map<string, Set<Handler>>();
    private _resolveReady!: (result: SubscribeResult) => void;
    private _rejectReady!: (error: RingcastError) => void;

    constructor(channel: string, private readonly _options: SubscribeOptions<M>, ack: boolean,
                private readonly _host: SubscriptionHost) {
        this.channel = channel;
        this.ack = ack;
        this._recover = _options.recover ?? true;
        this.ready = new Promise((resolve, reject) => {
            this._resolveReady = resolve;
            this._rejectReady = reject;
        });
        // An application that only uses callbacks never looks at `ready`.
        this.ready.catch(() => undefined);
    }

    /** Handles the messages of one event name; returns a function that removes it. */
    on<K extends keyof M & string>(event: K,
                                   handler: (data: M[K], message: Envelope<M[K], K>) => unknown):
        () => void {
        let set = this._handlers.get(event);
        if (set === undefined) {
            set = new Set();
            this._handlers.set(event, set);
        }
        set.add(handler as Handler);
        return () => set!.delete(handler as Handler);
    }

    /**
     * The position of the last message handed to the handlers (null before the first
     * subscribe's reply): keep it to recover after a page reload with `{recover: position}`.
     */
    get position(): Position | null {
        return this._seen === null ? null : { ...this._seen };
    }

    unsubscribe(): Promise<void> {
        return this._host.unsubscribe(this as unknown as Subscription<never>);
    }

    /** The `recover` field of the next subscribe command, or undefined for none. */
    recoverField(): Position | { since: number } | undefined {
        const recover = this._recover;
        if (recover === false) {
            return undefined;
        }
        const from = this.ack ? this._handled : this._seen;
        if (from !== null) {
            return { epoch: from.epoch, offset: from.offset };
        }
        return recover === true ? undefined : recover;
    }

    /** A subscribe was sent on a new connection. */
    subscribing(): void {
        this.state = 'subscribing';
        this._buffer = [];
    }

    /** The connection closed: subscribe again on the next one. */
    connectionLost(): void {
        if (this.state !== 'ended') {
            this.state = 'waiting';
            this._buffer = [];
        }
    }

    /** The subscribe's ok reply; then the messages that came before it. */
    subscribed(epoch: string, offset: number, recovered: boolean | undefined): SubscribeResult {
        const asked = recovered !== undefined;
        const keep = recovered === true && this._seen !== null && this._seen.epoch === epoch;
        if (!keep) {
            this._seen = { epoch, offset };
            this._handled = { epoch, offset };
        }
        if (this._recover !== false) {
            this._recover = true;
        }
        const result: SubscribeResult = { channel: this.channel, epoch, offset,
                                          resubscribed: this._subscribedOnce };
        if (asked) {
            result.recovered = recovered;
        }
        this._subscribedOnce = true;
        this.state = 'active';
        this._resolveReady(result);
        this._options.onSubscribed?.(result);
        if (recovered === false) {
            this._options.onRecoveryFailed?.(result);
        }
        for (const message of this._buffer.splice(0)) {
            this.receive(message);
        }
        return result;
    }

    /** The subscription is over: refused, revoked, or the client closed. */
    end(error: RingcastError | null): void {
        if (this.state === 'ended') {
            return;
        }
        this.state = 'ended';
        this._buffer = [];
        if (error !== null) {
            this._rejectReady(error);
            this._options.onEnded?.(error);
        }
    }

    /** A message of this channel: dropped as a duplicate or handed to the handlers. */
    receive(message: Envelope): void {
        switch (this.state) {
        case 'subscribing':
            this._buffer.push(message);
            return;
        case 'waiting':
        case 'ended':
            return;
        case 'active':
            break;
        }
        const seen = this._seen!;
        if (message.offset <= seen.offset) {
            this.duplicates += 1;
            if (this.ack) {
                // Resent because our ack had not arrived: confirm it again once the
                // first copy's handlers are done.
                this.afterHandlers(Promise.resolve(), seen.epoch, message.offset);
            }
            return;
        }
        if (message.offset !== seen.offset + 1) {
            this._host.reportGap(this.channel, seen.offset + 1, message.offset);
        }
        seen.offset = message.offset;
        this.afterHandlers(this.callHandlers(message), seen.epoch, message.offset);
        this._host.delivered(message);
    }

    presence(event: PresenceEvent): void {
        this._options.onPresence?.(event);
    }

    private callHandlers(message: Envelope): Promise<unknown> {
        const results: unknown[] = [];
        const call = (run: () => unknown) => {
            try {
                results.push(run());
            } catch (e) {
                this._host.reportHandlerError(e);
            }
        };
        if (this._options.onMessage) {
            call(() => this._options.onMessage!(message as ChannelMessage<M>));
        }
        for (const handler of this._handlers.get(message.event) ?? []) {
            call(() => handler(message.data, message));
        }
        return Promise.all(results.map((r) => Promise.resolve(r).catch(
            (e) => this._host.reportHandlerError(e))));
    }

    // Offsets become `handled` in order: each waits for the previous one's handlers.
    private afterHandlers(done: Promise<unknown>, epoch: string, offset: number): void {
        this._chain = this._chain.then(() => done).then(() => {
            if (this._handled === null || this._handled.epoch !== epoch) {
                return;
            }
            this._handled.offset = Math.max(this._handled.offset, offset);
            if (this.ack && this.state === 'active') {
                this._host.ackHandled(this as unknown as Subscription<never>, offset);
            }
        });
    }
}
