// The console session token of the link this tab opened, kept in the tab's
// sessionStorage (never in a URL) so that a reload, which is a GET of the
// opened link, resumes the same session. console.js keeps it; power.js
// asks with it, on the first page and on a reloaded one alike.

/** Where this tab keeps the session token of the link it opened. */
const KEY = `hcc-console:${window.location.pathname}`;

/** Keeps the session token for a reload of this tab. */
export function remember(session) {
    try {
        sessionStorage.setItem(KEY, JSON.stringify({ session }));
    } catch {
        // Storage off: a reload then says the link was opened.
    }
}

/** The token this tab kept for this link, or null. */
export function recalled() {
    try {
        const value = JSON.parse(sessionStorage.getItem(KEY) || 'null');
        return typeof value?.session === 'string' ? value.session : null;
    } catch {
        return null;
    }
}

/** Forgets the token: its session has ended. */
export function forget() {
    try {
        sessionStorage.removeItem(KEY);
    } catch {
        // Nothing kept.
    }
}
