// A typed event emitter: `Events` maps each event name to its payload type, so `on()`
// checks the handler against the event at compile time. Handlers run synchronously in
// the order they were added; one that throws is reported to `onHandlerError` and does
// not stop the others (an application bug must not cut the connection's dispatch short).

export type Listener<T> = (payload: T) => void;

export class Emitter<Events extends object> {
    private readonly _listeners = new Map<keyof Events, Set<Listener<never>>>();

    constructor(private readonly _onHandlerError: (error: unknown) => void) {}

    /** Adds `handler` for `event`; returns a function that removes it. */
    on<K extends keyof Events>(event: K, handler: Listener<Events[K]>): () => void {
        let set = this._listeners.get(event);
        if (set === undefined) {
            set = new Set();
            this._listeners.set(event, set);
        }
        set.add(handler as Listener<never>);
        return () => this.off(event, handler);
    }

    off<K extends keyof Events>(event: K, handler: Listener<Events[K]>): void {
        this._listeners.get(event)?.delete(handler as Listener<never>);
    }

    emit<K extends keyof Events>(event: K, payload: Events[K]): void {
        const set = this._listeners.get(event);
        if (set === undefined) {
            return;
        }
        for (const handler of [...set]) {
            try {
                (handler as Listener<Events[K]>)(payload);
            } catch (e) {
                this._onHandlerError(e);
            }
        }
    }

    listenerCount(event: keyof Events): number {
        return this._listeners.get(event)?.size ?? 0;
    }
}
