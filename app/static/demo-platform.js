// The demonstration LMS's side of LTI platform storage (1EdTech "LTI Client Side
// postMessages" and "postMessage Platform Storage"): the course page that frames the tool
// answers lti.capabilities, lti.put_data and lti.get_data (also with the older
// "org.imsglobal." prefix). Only messages from the framed tool's window and origin count;
// answers go back to that origin only. Values live as long as this page (one launch).
(function () {
  "use strict";
  var page = document.getElementById("demo-platform");
  if (!page) { return; }
  var toolOrigin = page.getAttribute("data-tool-origin");
  var frame = document.getElementById(page.getAttribute("data-frame"));
  var stored = Object.create(null);

  window.addEventListener("message", function (event) {
    if (!frame || event.source !== frame.contentWindow || event.origin !== toolOrigin) { return; }
    var data = event.data;
    if (typeof data === "string") {
      try { data = JSON.parse(data); } catch (e) { return; }
    }
    if (!data || typeof data !== "object" || typeof data.subject !== "string") { return; }
    var prefix = data.subject.indexOf("org.imsglobal.") === 0 ? "org.imsglobal." : "";
    var subject = data.subject.slice(prefix.length);
    if (subject.indexOf("lti.") !== 0 || /\.response$/.test(subject)) { return; }
    var reply = { subject: data.subject + ".response", message_id: data.message_id };
    if (subject === "lti.capabilities") {
      reply.supported_messages = [
        { subject: prefix + "lti.capabilities" },
        { subject: prefix + "lti.put_data", frame: "_parent" },
        { subject: prefix + "lti.get_data", frame: "_parent" }
      ];
    } else if (subject === "lti.put_data") {
      if (typeof data.key !== "string" || typeof data.value !== "string" || !data.key) {
        reply.error = { code: "bad_request", message: "key and value are required" };
      } else {
        stored[data.key] = data.value;
        reply.key = data.key;
        reply.value = data.value;
      }
    } else if (subject === "lti.get_data") {
      if (typeof data.key !== "string" || !(data.key in stored)) {
        reply.error = { code: "bad_request", message: "no value stored under this key" };
      } else {
        reply.key = data.key;
        reply.value = stored[data.key];
      }
    } else {
      reply.error = { code: "unsupported_subject", message: "not supported here" };
    }
    event.source.postMessage(reply, event.origin);
  });
})();
