import { useState } from 'preact/hooks';

/** Asks for the API key once; it is kept for this tab's session only (sessionStorage), never in the URL bar. */
export function KeyDialog({
  current,
  onSave,
  onCancel,
}: {
  current: string | undefined;
  onSave: (key: string | undefined) => void;
  onCancel: () => void;
}) {
  const [key, setKey] = useState(current ?? '');
  return (
    <div class="overlay" role="dialog" aria-modal="true" aria-labelledby="key-title">
      <form
        class="dialog"
        onSubmit={(e) => {
          e.preventDefault();
          onSave(key.trim() || undefined);
        }}
      >
        <h2 id="key-title">API key</h2>
        <p class="muted">This service asks for a key. It is sent as a Bearer token and kept only for this browser tab.</p>
        <label>
          Key
          <input type="password" autoComplete="off" value={key} onInput={(e) => setKey(e.currentTarget.value)} autoFocus />
        </label>
        <div class="row end">
          {current && (
            <button type="button" class="ghost" onClick={() => onSave(undefined)}>
              Forget key
            </button>
          )}
          <button type="button" class="ghost" onClick={onCancel}>
            Cancel
          </button>
          <button type="submit">Use key</button>
        </div>
      </form>
    </div>
  );
}
