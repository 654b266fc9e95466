// Behaviour shared by every page: confirmation before destructive actions, print buttons, wide
// tables opened at their newest columns.
// Plain JavaScript, no framework; pages work without it wherever a form can do the job.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

document.addEventListener("click", (event) => {
  const target = event.target instanceof Element ? event.target.closest("[data-print]") : null;
  if (target) {
    event.preventDefault();
    window.print();
  }
});

// The session's CSRF token, for scripts that call the API with the session cookie.
window.materialsCsrfToken = () => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : "";
};

// A wide table whose newest columns are at its right end (the coverage grid) opens scrolled
// there, so a phone shows the latest period first; scrolling left shows the older ones.
function scrollToEnd() {
  for (const wrap of document.querySelectorAll("[data-scroll-end]")) {
    wrap.scrollLeft = wrap.scrollWidth;
  }
}
scrollToEnd();
// Again once the fonts are in: wider text makes the table wider.
window.addEventListener("load", scrollToEnd, { once: true });

// A form sent back with an error (新建用户 with a weak password) opens at that error, focused,
// not at the top of the page with the message out of sight below the fold.
const errorShown = document.querySelector("[data-focus-on-load]");
if (errorShown instanceof HTMLElement) {
  errorShown.scrollIntoView({ block: "center" });
  errorShown.focus({ preventScroll: true });
}
