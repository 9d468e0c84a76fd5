import { describe, expect, it } from 'vitest';
import { WriteStallGuard } from './write-stall-guard.js';

/** A clock the test moves; each write "takes" `cost` milliseconds of it. */
function clocked(): { guard: WriteStallGuard; write: (cost: number) => void; wait: (ms: number) => void } {
  let now = 0;
  const guard = new WriteStallGuard(() => now);
  return {
    guard,
    write: (cost) => guard.timed(() => (now += cost)),
    wait: (ms) => (now += ms),
  };
}

describe('WriteStallGuard', () => {
  it('keeps fast writes inline', () => {
    const { guard, write } = clocked();
    for (let i = 0; i < 1000; i++) {
      expect(guard.inline()).toBe(true);
      write(0.01);
    }
  });

  it('sends writes to the pool for a second after a stall, then inline again', () => {
    const { guard, write, wait } = clocked();
    write(5);
    expect(guard.inline()).toBe(false);
    wait(999);
    expect(guard.inline()).toBe(false);
    wait(1);
    expect(guard.inline()).toBe(true);
    write(0.01);
    expect(guard.inline()).toBe(true);
  });

  it('doubles the penalty for stalls that follow one another, up to 64 s, and forgets after a quiet minute', () => {
    const { guard, write, wait } = clocked();
    const penalties: number[] = [];
    for (let i = 0; i < 9; i++) {
      write(2);
      let waited = 0;
      while (!guard.inline()) {
        wait(100);
        waited += 100;
      }
      penalties.push(waited);
    }
    expect(penalties).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 64000, 64000, 64000]);
    wait(60_001);
    write(2);
    wait(999);
    expect(guard.inline()).toBe(false);
    wait(1);
    expect(guard.inline()).toBe(true);
  });

  it('counts a write that throws', () => {
    const { guard, wait } = clocked();
    expect(() =>
      guard.timed(() => {
        wait(3);
        throw new Error('EIO');
      }),
    ).toThrow('EIO');
    expect(guard.inline()).toBe(false);
  });
});
