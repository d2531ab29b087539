/* The checkout page's card step: configure Moamalat's Lightbox with the server-signed values, open it,
   and show what the callbacks report. The callbacks settle nothing: they ask our server, which asks
   the gateway (and the gateway's signed notification settles the payment). No inline code: the page's
   CSP allows scripts from our origin and the gateway's script host only. */
(function () {
  "use strict";
  var main = document.getElementById("checkout");
  var status = document.getElementById("status");
  var payButton = document.getElementById("pay");
  var refreshButton = document.getElementById("refresh");
  var configuration = JSON.parse(document.getElementById("lightbox-configuration").textContent);
  var messages = JSON.parse(document.getElementById("checkout-messages").textContent);
  var refreshUrl = main.getAttribute("data-refresh-url");

  function show(text, tone) {
    status.textContent = text;
    status.className = "status" + (tone ? " status-" + tone : "");
  }

  function csrfToken() { return main.getAttribute("data-csrf") || ""; }

  function refresh(attempt) {
    return fetch(refreshUrl, {method: "POST", credentials: "same-origin",
                              headers: {"X-CSRFToken": csrfToken(), "Accept": "application/json"}})
      .then(function (response) { return response.json(); })
      .then(function (state) {
        if (state.status === "paid") {
          show(messages.confirmed, "paid");
          document.getElementById("card").hidden = true;
        } else if (state.open && attempt < 5) {
          setTimeout(function () { refresh(attempt + 1); }, 2000 * (attempt + 1));
        } else if (state.open) {
          show(messages.checking, "");
          refreshButton.hidden = false;
        } else {
          show(state.label, state.status);
          payButton.hidden = true;
        }
        return state;
      })
      .catch(function () { refreshButton.hidden = false; });
  }

  function configure() {
    var settings = {};
    Object.keys(configuration).forEach(function (key) { settings[key] = configuration[key]; });
    settings.completeCallback = function () {
      show(messages.paid, "paid");
      payButton.hidden = true;
      refresh(0);
    };
    settings.errorCallback = function () {
      show(messages.failed, "failed");
      refresh(4);
    };
    settings.cancelCallback = function () { show(messages.cancelled, ""); };
    window.Lightbox.Checkout.configure = settings;
  }

  payButton.addEventListener("click", function () {
    if (!window.Lightbox || !window.Lightbox.Checkout) {
      show(messages.checking, "");
      return;
    }
    configure();
    window.Lightbox.Checkout.showLightbox();
  });
  refreshButton.addEventListener("click", function () { refreshButton.hidden = true; refresh(4); });
})();
