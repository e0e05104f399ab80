// Grant programs: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    // The decision form shows the award fields only when "award" is chosen.
    var decision = document.querySelector("#decision-form select[name=decision]");
    var awardOnly = document.querySelector("#decision-form [data-award-only]");
    if (decision && awardOnly) {
      var sync = function () { awardOnly.hidden = decision.value !== "award"; };
      decision.addEventListener("change", sync);
      sync();
    }
    // The application form hides the typed organization details when one of the user's
    // organizations is chosen.
    var org = document.querySelector(".grant-form select[name=organization]");
    var typed = document.querySelector(".grant-form [data-typed-org]");
    if (org && typed) {
      var toggle = function () { typed.hidden = org.value !== ""; };
      org.addEventListener("change", toggle);
      toggle();
    }
  });
})();
