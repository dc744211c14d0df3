import { describe, expect, it } from "vitest";
import { scrollToShow, visibleRange } from "./rows";

describe("visibleRange", () => {
  it("renders the rows in view plus the overscan on each side", () => {
    // Rows 10..19 are in view (56 px rows, 560 px tall, scrolled to row 10).
    expect(visibleRange(560, 560, 56, 1000, 5)).toEqual({ start: 5, end: 25 });
  });

  it("clamps to the list at both ends", () => {
    expect(visibleRange(0, 560, 56, 1000, 5)).toEqual({ start: 0, end: 15 });
    expect(visibleRange(56 * 995, 560, 56, 1000, 5)).toEqual({ start: 990, end: 1000 });
    expect(visibleRange(0, 560, 56, 3, 5)).toEqual({ start: 0, end: 3 });
  });

  it("counts a partly visible row and treats negative offsets and sizes as zero", () => {
    expect(visibleRange(28, 56, 56, 100, 0)).toEqual({ start: 0, end: 2 });
    expect(visibleRange(-100, -5, 56, 100, 0)).toEqual({ start: 0, end: 0 });
  });
});

describe("scrollToShow", () => {
  it("leaves the scroll alone when the row is fully in view", () => {
    expect(scrollToShow(3, 100, 300, 56)).toBe(100);
  });

  it("scrolls up to a row above the view, and down just enough for a row below it", () => {
    expect(scrollToShow(1, 100, 300, 56)).toBe(56);
    expect(scrollToShow(10, 100, 300, 56)).toBe(10 * 56 + 56 - 300);
  });
});
