// The original tool's console URL form, kept for existing panels:
//   l.html?wss://HOST/PATH?server_id=1&token=abc#PASSWORD
// The console address is everything after the first `?` (its own `?` and
// `&` included) and the VNC password everything after `#`, both taken as
// they stand, without URL-decoding, as the original did.
import { Viewer, describeEnd, setStatus } from './vnc.js';

const url = location.search.slice(1);
const password = location.hash.slice(1);

const viewer = new Viewer({
    onConnect: (desktopName) => setStatus('connected', `Connected to ${desktopName || 'the console'}`),
    onEnd: (end) => {
        const failed = !end.userInitiated && (end.securityFailure !== null || end.error || !end.wasConnected);
        setStatus(failed ? 'failed' : 'disconnected', describeEnd(end));
    },
});

if (url) {
    setStatus('connecting', 'Connecting');
    // No password in the URL: the page asks when the server wants one.
    viewer.connect(url, password === '' ? undefined : password);
} else {
    setStatus('failed', 'No console address: open this page as l.html?wss://HOST/PATH#PASSWORD');
}
