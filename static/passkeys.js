// Passkeys: the browser side of WebAuthn. The server makes every challenge and checks every
// answer; this file only hands the options to navigator.credentials and posts the answer back
// in an ordinary form (with its CSRF token), so a passkey signs in the way a password does.
// Loaded from the site itself (the CSP allows no inline script). Without it, or in a browser
// without passkeys, the passkey buttons stay hidden and every other form works as before.
(function () {
  "use strict";

  var supported = window.PublicKeyCredential &&
    typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function" &&
    typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function";
  if (!supported) { return; }

  function token(form) {
    var input = form.querySelector('input[name="csrf_token"]');
    return input ? input.value : "";
  }

  // A fresh challenge from the server: the options navigator.credentials.get needs.
  function requestOptions(form) {
    return fetch(form.getAttribute("data-options-url"), {
      method: "POST", credentials: "same-origin",
      headers: {"X-CSRFToken": token(form), "Accept": "application/json"}
    }).then(function (response) {
      if (!response.ok) { throw new Error("options: " + response.status); }
      return response.json();
    }).then(function (json) { return PublicKeyCredential.parseRequestOptionsFromJSON(json); });
  }

  function say(form, text) {
    var status = form.querySelector("[data-passkey-status]");
    if (status) { status.textContent = text; status.hidden = !text; }
  }

  function send(form, field, credential) {
    var input = form.querySelector('input[name="' + field + '"]');
    input.value = JSON.stringify(credential.toJSON());
    input.disabled = false;
    form.submit();
  }

  // Sign-in: the button, and the passkeys the browser offers in the email field's autofill.
  document.querySelectorAll("form[data-passkey-sign-in]").forEach(function (form) {
    var button = form.querySelector('[data-test="passkey-sign-in"]');
    var pending = null;

    function ask(mediation) {
      if (pending) { pending.abort(); }
      var controller = pending = new AbortController();
      return requestOptions(form).then(function (publicKey) {
        var request = {publicKey: publicKey, signal: controller.signal};
        if (mediation) { request.mediation = mediation; }
        return navigator.credentials.get(request);
      }).then(function (credential) {
        if (credential) { send(form, "credential", credential); }
      }).catch(function (error) {
        if (error && error.name === "AbortError") { return; }
        if (!mediation) { say(form, "No passkey was used. Try again, or sign in with your password."); }
      });
    }

    button.hidden = false;
    button.addEventListener("click", function () { say(form, ""); ask(null); });
    // Not again on the page that answers a refused passkey: the browser would offer the same.
    if (form.hasAttribute("data-conditional") &&
        typeof PublicKeyCredential.isConditionalMediationAvailable === "function") {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
        if (available) { ask("conditional"); }
      });
    }
  });

  // Confirm it's you: a passkey instead of the password, posted with the action's own fields.
  document.querySelectorAll("form[data-passkey-reauth]").forEach(function (form) {
    var button = form.querySelector('[data-test="reauth-passkey"]');
    button.hidden = false;
    button.addEventListener("click", function () {
      requestOptions(form).then(function (publicKey) {
        return navigator.credentials.get({publicKey: publicKey});
      }).then(function (credential) {
        if (credential) { send(form, "passkey", credential); }
      }).catch(function () { say(form, "No passkey was used. Try again, or enter your password."); });
    });
  });

  // Adding a passkey: the options came with the page; the new credential is posted back.
  document.querySelectorAll("form[data-passkey-register]").forEach(function (form) {
    var button = form.querySelector('[data-test="create-passkey"]');
    button.disabled = false;
    form.addEventListener("submit", function (event) {
      if (form.querySelector('input[name="credential"]').value) { return; }
      event.preventDefault();
      var publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(
        JSON.parse(form.getAttribute("data-options")));
      navigator.credentials.create({publicKey: publicKey}).then(function (credential) {
        if (credential) { send(form, "credential", credential); }
      }).catch(function () {
        say(form, "No passkey was made. Try again, or go back to your passkeys.");
      });
    });
  });
})();
