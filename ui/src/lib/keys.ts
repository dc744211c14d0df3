// Every pane closes its own part on Escape and keeps the key from the window's handler: one definition of that.
/** A keydown handler that runs `run` on Escape (when `when` allows) and stops the key there. */
export function onEscape(run: () => void, when: () => boolean = () => true): (e: KeyboardEvent) => void {
  return (e) => {
    if (e.key !== "Escape" || !when()) return;
    e.stopPropagation();
    run();
  };
}
