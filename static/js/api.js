// The token section: copy the new token to the clipboard. Loaded again when htmx swaps the
// section in, so it binds its (delegated) listener only once.
(function () {
  "use strict";
  if (window.portalApiTokens) { return; }
  window.portalApiTokens = true;
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      button.textContent = button.getAttribute("data-copied");
    });
  });
})();
