// Copying a shown secret (a new root password) to the clipboard, for the
// dashboard and the console page alike.

/**
 * Copies the text of `source` and says on `button` whether it worked.
 * Without the clipboard API (a page served over plain http) the text is
 * selected and copied the old way.
 */
export async function copyText(source, button) {
    const value = source.textContent;
    if (!value) return;
    let copied = false;
    try {
        await navigator.clipboard.writeText(value);
        copied = true;
    } catch {
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        copied = document.execCommand('copy');
        selection.removeAllRanges();
    }
    button.textContent = copied ? 'Copied' : 'Copy failed: select it';
}
