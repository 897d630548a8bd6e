// Submits the LTI form post at once; the visible button is the fallback without JavaScript.
(function () {
  var form = document.getElementById("lti-form");
  if (form) { form.submit(); }
})();
