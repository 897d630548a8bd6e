// The LTI login and launch pages of a browser that may block blend727's cookies inside the
// LMS's iframe: LTI platform storage (1EdTech "LTI Client Side postMessages", lti-cs-pm, and
// "OIDC Login with LTI Client Side postMessages", lti-cs-oidc) and a cookie test.
// Everything comes from data-attributes of #lti-storage (no inline script: the pages run
// under a strict CSP); the script only shows or hides [data-step] blocks, whose words are
// in the (translated) templates.
//
//   data-mode="login": lti.put_data {key, value: state}, test a cookie like ours, then go to
//     data-next (the platform's authorization endpoint); if neither storage nor cookies
//     work, show [data-step=blocked] (its link starts the same login in a new window).
//   data-mode="check": lti.get_data {key}; only if the platform's frame answers with this
//     launch's state, submit #lti-storage-form (the id_token, to /lti/launch/confirm);
//     otherwise show [data-step=failed].
(function () {
  "use strict";
  var root = document.getElementById("lti-storage");
  if (!root) { return; }
  var mode = root.getAttribute("data-mode");
  var target = root.getAttribute("data-target");
  // The origin of the platform's OIDC authorization endpoint: the only origin our messages
  // may reach (postMessage's targetOrigin) and the only one whose answers count.
  var origin = root.getAttribute("data-origin");
  var key = root.getAttribute("data-key");
  var value = root.getAttribute("data-value");
  var timeout = parseInt(root.getAttribute("data-timeout"), 10) || 2000;

  function show(step) {
    var blocks = root.querySelectorAll("[data-step]");
    for (var i = 0; i < blocks.length; i++) {
      blocks[i].hidden = blocks[i].getAttribute("data-step") !== step;
    }
  }

  // "_parent": the window that frames this page (or opened it); any other name: that frame
  // of the parent, such as Canvas's "post_message_forwarding".
  function storageWindow() {
    var parent = window.parent !== window ? window.parent : window.opener;
    if (!parent) { return null; }
    if (target === "_parent") { return parent; }
    try { return parent.frames[target] || null; } catch (e) { return null; }
  }

  function newMessageId() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  // Sends one message; done(answer) with the platform's answer, or done(null) after an
  // error, the timeout, or when there is no platform window to ask.
  function ask(subject, message, done) {
    var peer = target && origin ? storageWindow() : null;
    if (!peer) { done(null); return; }
    var id = newMessageId();
    var finished = false;
    var timer = null;
    var answers = [subject + ".response", "org.imsglobal." + subject + ".response"];
    function listen(event) {
      if (event.origin !== origin) { return; }
      var data = event.data;
      if (typeof data === "string") {
        try { data = JSON.parse(data); } catch (e) { return; }
      }
      if (!data || typeof data !== "object" || data.message_id !== id) { return; }
      if (answers.indexOf(data.subject) < 0) { return; }
      finish(data.error ? null : data);
    }
    function finish(answer) {
      if (finished) { return; }
      finished = true;
      window.removeEventListener("message", listen);
      window.clearTimeout(timer);
      done(answer);
    }
    window.addEventListener("message", listen);
    timer = window.setTimeout(function () { finish(null); }, timeout);
    message.subject = subject;
    message.message_id = id;
    try { peer.postMessage(message, origin); } catch (e) { finish(null); }
  }

  // Whether a cookie with the attributes of blend727's own survives where this page runs.
  function cookiesWork() {
    var name = "blend727-cookie-test";
    var attributes = root.getAttribute("data-cookie") || "Path=/";
    try {
      document.cookie = name + "=1; " + attributes;
      var kept = document.cookie.indexOf(name + "=1") >= 0;
      document.cookie = name + "=; Max-Age=0; " + attributes;
      return kept;
    } catch (e) {
      return false;
    }
  }

  if (mode === "login") {
    var next = root.getAttribute("data-next");
    var cookies = cookiesWork();
    var go = function () { window.location.replace(next); };
    if (target) {
      ask("lti.put_data", { key: key, value: value }, function (answer) {
        if (answer || cookies) { go(); } else { show("blocked"); }
      });
    } else if (cookies) {
      go();
    } else {
      show("blocked");
    }
  } else if (mode === "check") {
    ask("lti.get_data", { key: key }, function (answer) {
      if (answer && answer.value === value) {
        document.getElementById("lti-storage-form").submit();
      } else {
        show("failed");
      }
    });
  }
})();
