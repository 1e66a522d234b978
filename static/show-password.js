// "Show password": a toggle button after each password field, so that people can check what
// they typed (registration asks for the password once). Pressed, the field shows its text;
// pressed again, or when the form is sent, it is hidden again. Without this script the
// fields simply stay hidden. Loaded from the site itself: the CSP allows no inline script.
(function () {
  "use strict";

  function addToggle(input) {
    var label = input.id && document.querySelector('label[for="' + input.id + '"]');
    var name = label ? label.textContent.trim().toLowerCase() : "password";
    var button = document.createElement("button");
    button.type = "button";
    button.className = "reveal";
    button.textContent = "Show " + name;
    button.setAttribute("aria-pressed", "false");
    button.setAttribute("aria-controls", input.id);
    button.setAttribute("data-test", "show-password");

    function show(visible) {
      input.type = visible ? "text" : "password";
      button.setAttribute("aria-pressed", visible ? "true" : "false");
    }

    button.addEventListener("click", function () { show(input.type === "password"); });
    if (input.form) {
      // Browsers remember text fields in their form history; a password must not be.
      input.form.addEventListener("submit", function () { show(false); });
    }
    input.insertAdjacentElement("afterend", button);
  }

  document.querySelectorAll('input[type="password"]').forEach(addToggle);
})();
