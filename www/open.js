// The page a GET of a one-time console link (/c/<token>) answers. The GET
// leaves the link as it is, so that mail scanners and chat link previews
// that fetch it first do not use it up; this script opens the console at
// once with a POST to the same URL (the form has no action), whose answer
// is the console page. Without script, the form's button does the same.
const form = document.getElementById('open');
if (form) {
    // One POST only: a second one would find the link used.
    form.querySelector('button').disabled = true;
    document.getElementById('status').textContent = 'Opening the console\u2026';
    form.submit();
}
