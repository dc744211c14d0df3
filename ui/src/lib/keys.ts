// Every pane closes its own part on Escape and keeps the key from the window's handler, and a
// modal dialog keeps Tab inside itself: one definition of each.
/**
 * A keydown handler that runs `run` on Escape (when `when` allows) and always stops the key
 * there: a pane that is busy (signing in) must not be closed by the window's handler either.
 */
export function onEscape(run: () => void, when: () => boolean = () => true): (e: KeyboardEvent) => void {
  return (e) => {
    if (e.key !== "Escape") return;
    e.stopPropagation();
    if (when()) run();
  };
}

const FOCUSABLE = 'button, [href], input, select, textarea, [tabindex]:not([tabindex="-1"])';

/** On Tab or Shift+Tab at the last or first control of `box`, wraps around inside it. */
export function keepTabIn(e: KeyboardEvent, box: HTMLElement | undefined): void {
  // WebKitGTK reports Shift+Tab (GDK's ISO_Left_Tab) as key "Unidentified", code "Tab".
  if ((e.key !== "Tab" && e.code !== "Tab") || !box) return;
  const all = [...box.querySelectorAll<HTMLElement>(FOCUSABLE)].filter(
    (el) => !el.hasAttribute("disabled") && el.getClientRects().length > 0,
  );
  if (all.length === 0) {
    e.preventDefault();
    box.focus();
    return;
  }
  const first = all[0];
  const last = all[all.length - 1];
  const at = document.activeElement;
  if (e.shiftKey && (at === first || at === box)) {
    e.preventDefault();
    last.focus();
  } else if (!e.shiftKey && at === last) {
    e.preventDefault();
    first.focus();
  }
}
