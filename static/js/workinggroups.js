// Working groups: small enhancements. Every page works without this file.
(function () {
  "use strict";
  // Select the calendar link when focused, to copy it easily.
  document.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches("input[data-select-on-focus]")) {
      event.target.select();
    }
  });
  // After an htmx reply was posted, put the cursor back into the (reset) reply box.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail && event.detail.target && event.detail.target.id === "reply-box") {
      var box = document.getElementById("id_body");
      if (box) { box.focus(); }
    }
  });
})();
