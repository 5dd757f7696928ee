// Fan-out with admission control: copies each entry to every sink lane of its producer (every fan-out sink, or the
// sinks its source named), but only when every `block` lane among them has room.
// Producers (collector channels, in-host writers) park entries in their own inbox; the router admits them
// round-robin, so one chatty source cannot starve the others, and tells each producer how many it admitted
// (children turn that into credits).
import { Entry } from "./entry.js";
import { Ring } from "./ring.js";
import type { SinkPipeline } from "./sink-pipeline.js";
import { type Slice, engineSlice, nextTurn } from "./slice.js";
import { describe } from "./serialize.js";
import { isThenable } from "../util/thenable.js";

export interface Producer {
  readonly name: string;
  readonly inbox: Ring<Entry>;
  /** `count` entries (`bytes` in all) left the inbox for the queues. */
  onAdmitted(count: number, bytes: number): void;
}

/** Entries a producer may pass per turn before the next producer gets its turn. */
const TURN = 512;

/** A filter's verdict on an entry, per lane. */
const OUT = 0;
const IN = 1;
const THREW = 2;

/** The lanes one producer's entries go to. */
class Lanes {
  readonly blocking: SinkPipeline[];
  readonly hasFilters: boolean;

  constructor(readonly routes: SinkPipeline[]) {
    this.blocking = routes.filter((p) => p.blocks);
    this.hasFilters = routes.some((p) => p.options.filter !== undefined);
  }
}

/**
 * The filters' verdicts on the entry at the head of one producer's inbox, per lane of its routes. Kept while that
 * entry waits for room, so each filter runs once per record however many pumps it waits through (a filter may
 * count or log, and a throw is counted once per record).
 */
class Verdicts {
  /** The entry judged; undefined once it is admitted. */
  entry: Entry | undefined;
  /** OUT, IN or THREW per lane. */
  readonly of: number[] = [];
  /** What the filter threw, for lanes whose verdict is THREW. */
  readonly errors: unknown[] = [];
}

export class Router {
  /** Lanes of producers that did not name their sinks: every fan-out sink. */
  private all = new Lanes([]);
  /** Every sink by name, dead-letter-only ones too: a source may name any of them. */
  private byName: ReadonlyMap<string, SinkPipeline> = new Map();
  /** Producers that named their sinks, with those names and the lanes that exist of them now. */
  private readonly named = new Map<Producer, { sinks: readonly string[]; lanes: Lanes }>();
  private readonly producers = new Set<Producer>();
  /**
   * Producers with entries in their inbox, in turn order, each at most once (`queued`): a pump visits only these,
   * not every producer there is (a host can have thousands of idle `write()` sources).
   */
  private readonly ready = new Ring<Producer>(16);
  private readonly queued = new Set<Producer>();
  private pumping = false;
  private again = false;
  /** A sliced pump stopped short of the end: the rest is admitted in the next turn of the loop. */
  private continuing = false;
  /** Producer turns taken by the pump under way. */
  private turns = 0;
  /** Of producers whose lanes have filters (reused arrays, not one per record). */
  private readonly verdicts = new Map<Producer, Verdicts>();
  /** Called when a sink's filter threw (the record is left out of that sink, and counted as filtered). */
  onFilterError: ((pipeline: SinkPipeline, error: unknown) => void) | undefined;
  /** Called when every sink's filter left an entry out: it is settled at once. */
  onUnrouted: ((entry: Entry) => void) | undefined;

  /**
   * `routes`: the lanes that receive fan-out (dead-letter-only sinks are excluded by the caller). `byName`: every
   * sink there is, for producers that named theirs.
   */
  setRoutes(routes: SinkPipeline[], byName: ReadonlyMap<string, SinkPipeline> = new Map()): void {
    this.all = new Lanes(routes);
    this.byName = byName;
    for (const n of this.named.values()) n.lanes = this.lanesOf(n.sinks);
    this.verdicts.clear(); // they are per lane of the old routes: waiting entries are judged again
    this.pump();
  }

  /**
   * `sinks`: the names of the only sinks this producer's entries go to. A name with no sink behind it (removed)
   * is skipped; with none left, entries wait in the inbox, as they do before any sink is added.
   */
  addProducer(p: Producer, sinks?: readonly string[]): void {
    this.producers.add(p);
    if (sinks !== undefined) this.named.set(p, { sinks, lanes: this.lanesOf(sinks) });
    this.enlist(p);
  }

  /**
   * Whether a lane of `p`'s packs what arrives for it (its sink is stalled: see WaitQueue.setPacking), so that its
   * records leave their channel frames as soon as they are admitted.
   */
  packs(p: Producer): boolean {
    for (const lane of (this.named.get(p)?.lanes ?? this.all).routes) if (lane.packing) return true;
    return false;
  }

  removeProducer(p: Producer): void {
    this.producers.delete(p);
    this.named.delete(p);
    this.verdicts.delete(p);
    this.queued.delete(p); // its slot in `ready` is skipped
  }

  private lanesOf(sinks: readonly string[]): Lanes {
    const routes: SinkPipeline[] = [];
    for (const name of sinks) {
      const p = this.byName.get(name);
      if (p !== undefined) routes.push(p);
    }
    return new Lanes(routes);
  }

  /** Entries waiting in every inbox. */
  get waiting(): number {
    let n = 0;
    for (const p of this.queued) n += p.inbox.length;
    return n;
  }

  /**
   * Whether some waiting entry has a sink to go to. Those of a producer with none (every sink it named was removed,
   * or there is no sink at all) can only wait for a sink to be added.
   */
  hasRoutableWaiting(): boolean {
    for (const p of this.queued) {
      if (p.inbox.length > 0 && (this.named.get(p)?.lanes ?? this.all).routes.length > 0) return true;
    }
    return false;
  }

  constructor(private readonly slice: Slice = engineSlice) {}

  /**
   * Admit as much as the queues allow, fairly across producers. Safe to call often. `from`: a producer that just
   * put entries in its inbox (it joins the turn order).
   *
   * `sliced`: the engine's own pumps (a collector's frames came in, a queue has room again) stop once the engine's
   * slice of this turn of the loop is used up, after one producer's turn at least, and admit the rest in the next
   * turn: the host's callbacks run in between. A pump the host asked for (`write()`, `stop()`) admits all it can now.
   */
  pump(from?: Producer, sliced = false): void {
    if (from !== undefined) this.enlist(from);
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    this.turns = 0;
    try {
      do {
        this.again = false;
        if (!this.pumpOnce(sliced)) break;
      } while (this.again);
    } finally {
      this.pumping = false;
    }
  }

  /** The rest of a sliced pump, in the next turn of the loop (once, however many pumps stopped short meanwhile). */
  private continueNextTurn(): void {
    if (this.continuing) return;
    this.continuing = true;
    nextTurn(() => {
      this.continuing = false;
      this.pump(undefined, true);
    });
  }

  /** Put a registered producer with waiting entries in line for turns (once). */
  private enlist(p: Producer): void {
    if (p.inbox.length > 0 && !this.queued.has(p) && this.producers.has(p)) {
      this.queued.add(p);
      this.ready.push(p);
    }
  }

  /** One or more passes over the producers in line; false when a sliced pump stopped short (see `pump`). */
  private pumpOnce(sliced: boolean): boolean {
    const ready = this.ready;
    let progress = true;
    while (progress) {
      progress = false;
      const stamp = Entry.admitStamp(Date.now());
      /** How many producers were back in line after the last one that admitted anything. */
      let upTo = 0;
      // One turn for each producer in line. Every one of them is shifted: `ready` ends up in the order they
      // were put back (producers enlisted meanwhile among them).
      for (let k = ready.length; k > 0; k--) {
        if (sliced && this.slice.spent() && this.turns > 0) {
          this.continueNextTurn();
          return false;
        }
        const p = ready.shift()!;
        if (!this.queued.has(p)) continue; // removed meanwhile
        this.turns++;
        const inbox = p.inbox;
        const lanes = this.named.get(p)?.lanes ?? this.all;
        const verdicts = lanes.hasFilters ? this.verdictsOf(p) : undefined;
        let admitted = 0;
        let bytes = 0;
        while (admitted < TURN && inbox.length > 0) {
          const e = inbox.peek()!;
          if (!this.canAdmit(e, lanes, verdicts)) break;
          inbox.shift();
          e.admit(stamp);
          bytes += e.bytes;
          this.route(e, lanes, verdicts);
          admitted++;
        }
        if (inbox.length > 0) ready.push(p);
        else this.queued.delete(p);
        if (admitted > 0) {
          progress = true;
          upTo = ready.length - (k - 1); // the k - 1 not yet visited are still ahead
          p.onAdmitted(admitted, bytes);
        }
      }
      // The next pass starts after the producer that admitted last: one that found the queues full goes ahead of
      // the one that filled them. (Not a fixed step per pass: a pump under a full queue is a pass that admits and
      // one that does not, and two steps cancel out with two producers.)
      if (upTo < ready.length) for (let i = upTo; i > 0; i--) ready.push(ready.shift()!);
    }
    return true;
  }

  private verdictsOf(p: Producer): Verdicts {
    let v = this.verdicts.get(p);
    if (v === undefined) this.verdicts.set(p, (v = new Verdicts()));
    return v;
  }

  /** `verdicts`: given when the lanes have filters. */
  private canAdmit(e: Entry, lanes: Lanes, verdicts: Verdicts | undefined): boolean {
    const routes = lanes.routes;
    // No sink yet: hold entries (producers feel backpressure) rather than drop them.
    if (routes.length === 0) return false;
    if (verdicts !== undefined) {
      if (verdicts.entry !== e) this.judge(e, routes, verdicts);
      const of = verdicts.of;
      for (let i = 0; i < routes.length; i++) {
        const p = routes[i]!;
        if (of[i] === IN && p.blocks && !p.hasRoom(e.bytes)) return false;
      }
      return true;
    }
    const blocking = lanes.blocking;
    for (let i = 0; i < blocking.length; i++) if (!blocking[i]!.hasRoom(e.bytes)) return false;
    return true;
  }

  private judge(e: Entry, routes: SinkPipeline[], verdicts: Verdicts): void {
    const { of, errors } = verdicts;
    of.length = routes.length;
    for (let i = 0; i < routes.length; i++) {
      const f = routes[i]!.options.filter;
      if (f === undefined) of[i] = IN;
      else {
        try {
          const verdict: unknown = f(e.record);
          if (verdict === true) of[i] = IN;
          else if (verdict === false) of[i] = OUT;
          else {
            // A promise (an async filter) or another value would exclude every record without a word.
            of[i] = THREW;
            errors[i] = new TypeError(`a filter must return true or false synchronously, it returned ${isThenable(verdict) ? "a promise (an async function?)" : describe(verdict)}`);
          }
        } catch (error) {
          of[i] = THREW; // a throwing filter excludes the record from that sink rather than crashing the host
          errors[i] = error;
        }
      }
    }
    verdicts.entry = e;
  }

  private route(e: Entry, lanes: Lanes, verdicts: Verdicts | undefined): void {
    const routes = lanes.routes;
    if (verdicts === undefined) {
      e.pending = routes.length;
      for (let i = 0; i < routes.length; i++) routes[i]!.accept(e);
      return;
    }
    verdicts.entry = undefined; // admitted: the next head is judged afresh
    // The filters are done with the parsed record: queued, the entry holds its bytes only, as the bound counts.
    e.releaseDecoded();
    const { of, errors } = verdicts;
    let targets = 0;
    for (let i = 0; i < routes.length; i++) if (of[i] === IN) targets++;
    if (targets === 0) {
      for (let i = 0; i < routes.length; i++) routes[i]!.counters.filtered++;
      this.onUnrouted?.(e);
    } else {
      e.pending = targets;
      for (let i = 0; i < routes.length; i++) {
        if (of[i] === IN) routes[i]!.accept(e);
        else routes[i]!.counters.filtered++;
      }
    }
    // Counted here, with `filtered`, once per admitted record (a filter error is part of `filtered`).
    for (let i = 0; i < routes.length; i++) {
      if (of[i] !== THREW) continue;
      const error = errors[i];
      errors[i] = undefined;
      try {
        this.onFilterError?.(routes[i]!, error);
      } catch {
        // Reporting must not break routing: the record is admitted, and a throw here would leave its producer out
        // of line for good (counted in `filtered` and `filterErrors` all the same).
      }
    }
  }
}
