// Dynamic registration is finished: tell the LMS, which then closes its registration window
// (LTI-DR §3.7). The message subject comes from the page's data attribute.
(function () {
  var button = document.getElementById("lti-register-close");
  if (!button) { return; }
  var subject = button.getAttribute("data-subject") || "org.imsglobal.lti.close";
  button.addEventListener("click", function () {
    var target = window.opener || window.parent;
    if (target && target !== window) {
      target.postMessage({ subject: subject }, "*");
    } else {
      window.close();
    }
  });
})();
