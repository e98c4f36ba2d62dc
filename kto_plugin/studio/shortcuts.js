// Keyboard shortcuts of the studio's Label tab: a accept, r reject, s skip.
// Not while typing in a text box (the answer can be edited), nor with Ctrl, Alt or Cmd.
document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (event.ctrlKey || event.altKey || event.metaKey || event.repeat) return;
  if (target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" || target.isContentEditable)) return;
  const buttons = { a: "label-accept", r: "label-reject", s: "label-skip" };
  const id = buttons[event.key.toLowerCase()];
  if (!id) return;
  const element = document.getElementById(id);
  const button = element && (element.tagName === "BUTTON" ? element : element.querySelector("button"));
  if (button && button.offsetParent !== null && !button.disabled) {
    event.preventDefault();
    button.click();
  }
});
