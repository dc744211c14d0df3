import { describe, expect, it } from "vitest";
import { listenerGroup } from "./listeners";

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe("listenerGroup", () => {
  it("ends every listener it kept, once", async () => {
    const ended: string[] = [];
    const group = listenerGroup();
    expect(await group.keep(Promise.resolve(() => ended.push("a")))).toBe(true);
    expect(await group.keep(Promise.resolve(() => ended.push("b")))).toBe(true);
    expect(ended).toEqual([]);
    group.end();
    expect(ended).toEqual(["a", "b"]);
    expect(group.ended).toBe(true);
    group.end();
    expect(ended).toEqual(["a", "b"]);
  });

  it("ends a listener whose set-up finishes after the group ended, as soon as it does", async () => {
    const ended: string[] = [];
    const group = listenerGroup();
    const late = deferred<() => void>();
    const kept = group.keep(late.promise);
    group.end();
    late.resolve(() => ended.push("late"));
    expect(await kept).toBe(false);
    expect(ended).toEqual(["late"]);
  });

  it("answers false for a listener that could not be set up, and still ends the others", async () => {
    const ended: string[] = [];
    const group = listenerGroup();
    expect(await group.keep(Promise.reject(new Error("no events")))).toBe(false);
    expect(await group.keep(Promise.resolve(() => ended.push("ok")))).toBe(true);
    group.end();
    expect(ended).toEqual(["ok"]);
  });
});
