import { describe, expect, it } from 'vitest';
import { BusyPoll, type BusyPollClock } from './busy-poll.js';

/** A clock the test moves by hand; `later` turns run when the test lets the event loop turn. */
function manualClock(): BusyPollClock & { at: bigint; turns: Array<() => void>; spinFor(micros: number): number; sleep(micros: number): void } {
  const clock = {
    at: 0n,
    turns: [] as Array<() => void>,
    now: () => clock.at,
    later: (turn: () => void) => void clock.turns.push(turn),
    /** Lets the loop turn once a microsecond for `micros` (or until polling stops); returns the turns run. */
    spinFor(micros: number): number {
      let ran = 0;
      for (let i = 0; i < micros && clock.turns.length > 0; i++) {
        clock.at += 1000n;
        clock.turns.shift()!();
        ran++;
      }
      return ran;
    },
    /** Time passes with the loop asleep (nothing scheduled). */
    sleep(micros: number): void {
      clock.at += BigInt(micros) * 1000n;
    },
  };
  return clock;
}

describe('BusyPoll', () => {
  it('polls for the window after a reply, counted from its first turn, then stops', () => {
    const clock = manualClock();
    const poll = new BusyPoll(100, clock);
    poll.started();
    poll.activity();
    // The window starts at the first turn (1 us in): 100 us of turns after it, one more to find it over.
    expect(clock.spinFor(1000)).toBe(101);
    expect(clock.turns).toEqual([]);
  });

  it('stops polling when the next request arrives, and the window stays', () => {
    const clock = manualClock();
    const poll = new BusyPoll(64, clock);
    for (let request = 0; request < 5; request++) {
      poll.started();
      poll.activity();
      clock.spinFor(30);
    }
    poll.started();
    // The turn still queued finds polling over and schedules nothing more.
    clock.spinFor(1000);
    expect(clock.turns).toEqual([]);
    expect(poll.windowMicros).toBe(64);
  });

  it('does not poll while a request runs (its work may be on another thread)', () => {
    const clock = manualClock();
    const poll = new BusyPoll(64, clock);
    poll.started();
    poll.started();
    poll.activity();
    expect(clock.turns).toEqual([]);
    poll.activity();
    expect(clock.turns.length).toBe(1);
  });

  it('halves the window for a client slower than the maximum, down to nothing, then does not poll', () => {
    const clock = manualClock();
    const poll = new BusyPoll(16, clock);
    const windows: number[] = [];
    for (let request = 0; request < 5; request++) {
      poll.started();
      windows.push(poll.windowMicros);
      poll.activity();
      clock.spinFor(1000);
      clock.sleep(1000);
    }
    expect(windows).toEqual([16, 8, 4, 0, 0]);
    poll.started();
    poll.activity();
    expect(clock.turns).toEqual([]);
  });

  it('grows the window again when requests come within the maximum of the loop going to sleep', () => {
    const clock = manualClock();
    const poll = new BusyPoll(64, clock);
    // 64, 32, 16, 8, 4, then nothing: each request a millisecond after the last.
    for (let request = 0; request < 6; request++) {
      poll.started();
      poll.activity();
      clock.spinFor(1000);
      clock.sleep(1000);
    }
    expect(poll.windowMicros).toBe(0);
    const windows: number[] = [];
    for (let request = 0; request < 6; request++) {
      poll.started();
      windows.push(poll.windowMicros);
      poll.activity();
      clock.spinFor(1000);
      // The next request comes 40 us after the loop went to sleep: polling that much longer would have caught it.
      clock.sleep(40);
    }
    expect(windows).toEqual([0, 4, 8, 16, 32, 64]);
  });

  it('keeps one chain of turns when a request stops polling and its reply starts it again before a turn ran', () => {
    const clock = manualClock();
    const poll = new BusyPoll(64, clock);
    for (let request = 0; request < 10; request++) {
      poll.started();
      poll.activity();
    }
    expect(clock.turns.length).toBe(1);
  });

  it('polls again once the requests of a connection that ended are given back', () => {
    const clock = manualClock();
    const poll = new BusyPoll(64, clock);
    poll.started();
    poll.started();
    poll.activity();
    expect(clock.turns).toEqual([]);
    poll.abandoned(1);
    poll.started();
    poll.activity();
    expect(clock.turns.length).toBe(1);
  });

  it('does nothing with a maximum of 0', () => {
    const clock = manualClock();
    const poll = new BusyPoll(0, clock);
    poll.started();
    poll.activity();
    expect(clock.turns).toEqual([]);
  });
});
