// The reset form works without this script; with it, the user sees the
// password policy being met while typing, whether both entries match, and
// can show the passwords. The server and the hub check everything again.
(function () {
  "use strict";
  document.documentElement.setAttribute("data-js", "on");
  var form = document.getElementById("set");
  if (!form) {
    return;
  }
  var pw = document.getElementById("password");
  var again = document.getElementById("confirm");
  var pwError = document.getElementById("password-error");
  var againError = document.getElementById("confirm-error");
  var match = document.getElementById("match");
  var submit = form.querySelector("button[type=submit]");
  var label = submit.textContent;
  var minLength = parseInt(form.getAttribute("data-min-length") || "0", 10);
  var classes = parseInt(form.getAttribute("data-classes") || "0", 10);

  // the script gives its own messages, tied to the fields
  form.noValidate = true;

  var show = form.querySelector(".show");
  var box = document.getElementById("show");
  show.hidden = false;
  box.addEventListener("change", function () {
    var type = box.checked ? "text" : "password";
    pw.type = type;
    again.type = type;
  });

  // length counts characters, as the hub does, not UTF-16 units
  function length(s) {
    return Array.from(s).length;
  }

  // classesOf counts which of lowercase, uppercase, digits and other
  // characters occur in s
  function classesOf(s) {
    var found = { lower: 0, upper: 0, digit: 0, other: 0 };
    Array.from(s).forEach(function (c) {
      if (/\p{Ll}/u.test(c)) {
        found.lower = 1;
      } else if (/\p{Lu}/u.test(c)) {
        found.upper = 1;
      } else if (/\p{Nd}/u.test(c)) {
        found.digit = 1;
      } else {
        found.other = 1;
      }
    });
    return found.lower + found.upper + found.digit + found.other;
  }

  var rules = {
    length: function (s) {
      return length(s) >= minLength;
    },
    classes: function (s) {
      return classesOf(s) >= classes;
    }
  };

  // policyProblem returns what the password lacks, or ""
  function policyProblem(s) {
    // the hub keeps 72 bytes of a password; letters beyond English take more
    // than one byte each, so the field's maxlength alone does not tell
    if (new TextEncoder().encode(s).length > 72) {
      return "The password is too long: at most 72 bytes, which is fewer than 72 " +
        "characters when it has letters outside English.";
    }
    if (minLength > 1 && !rules.length(s)) {
      return "The password is too short: it needs at least " + minLength + " characters.";
    }
    if (classes > 1 && !rules.classes(s)) {
      return "The password needs at least " + classes + " of: lowercase letters, " +
        "uppercase letters, digits, other characters.";
    }
    return "";
  }

  // showRules marks each rule met or not; strict marks unmet ones as errors
  function showRules(strict) {
    var s = pw.value;
    form.querySelectorAll(".rules li").forEach(function (li) {
      var ok = s !== "" && rules[li.getAttribute("data-rule")](s);
      li.classList.toggle("met", ok);
      li.classList.toggle("unmet", !ok && strict);
      li.querySelector(".state").textContent = s === "" ? "" : ok ? " (met)" : " (not met)";
    });
  }

  function setText(el, text, kind) {
    if (el.textContent !== text) {
      el.textContent = text;
    }
    if (kind !== undefined) {
      el.className = "match " + kind;
    }
  }

  // showMatch says whether both entries match, once the second is typed
  function showMatch() {
    var a = pw.value;
    var b = again.value;
    if (b === "") {
      setText(match, "", "");
    } else if (a === b) {
      setText(match, "✓ Both entries match.", "ok");
    } else if (length(b) >= length(a)) {
      setText(match, "The entries do not match yet.", "no");
    } else {
      setText(match, "", "");
    }
  }

  function setError(input, el, text) {
    setText(el, text);
    if (text) {
      input.setAttribute("aria-invalid", "true");
    } else {
      input.removeAttribute("aria-invalid");
    }
  }

  pw.addEventListener("input", function () {
    setError(pw, pwError, "");
    showRules(false);
    showMatch();
  });
  again.addEventListener("input", function () {
    setError(again, againError, "");
    showMatch();
  });

  form.addEventListener("submit", function (event) {
    var a = pw.value;
    var first = null;
    var problem = a === "" ? "Enter a new password." : policyProblem(a);
    if (problem) {
      setError(pw, pwError, problem);
      showRules(true);
      first = pw;
    }
    if (a !== "" && again.value !== a) {
      setError(again, againError,
        "The two entries do not match. Type the same password in both fields.");
      first = first || again;
    }
    if (first) {
      event.preventDefault();
      first.focus();
      return;
    }
    // one submission at a time: a second would find the link in use
    submit.disabled = true;
    submit.textContent = "Setting the password…";
  });

  // coming back from the history, the button works again
  window.addEventListener("pageshow", function () {
    submit.disabled = false;
    submit.textContent = label;
  });

  showRules(false);
})();
