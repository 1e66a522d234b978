// The page a mailed link opens: the link's token is in the address's fragment (after "#"),
// which browsers never send to a server, so that no log holds it. This fills the page's form
// with it, takes it out of the address bar and history, and sends the form, which opens the
// link's own page (nothing is done before its button is pressed). Without this script the
// person pastes the code into the same form.
(function () {
  "use strict";
  var form = document.querySelector("form[data-link-token]");
  var token = decodeURIComponent(window.location.hash.slice(1));
  if (!form || !token) {
    return;
  }
  history.replaceState(null, "", window.location.pathname + window.location.search);
  form.elements.token.value = token;
  form.setAttribute("aria-busy", "true");
  form.submit();
})();
