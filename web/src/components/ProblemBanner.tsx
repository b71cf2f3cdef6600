import type { ApiProblem } from '../api';

/** An API error as its problem's title and detail (never raw JSON), or a short confirmation. */
export function ProblemBanner({
  problem,
  notice,
  onDismiss,
}: {
  problem?: ApiProblem | undefined;
  notice?: string | undefined;
  onDismiss: () => void;
}) {
  if (!problem && !notice) return null;
  return (
    <div
      class={problem ? 'banner banner-error' : 'banner banner-ok'}
      role={problem ? 'alert' : 'status'}
      data-testid={problem ? 'problem' : 'notice'}
    >
      <div class="banner-text">
        {problem ? (
          <>
            <strong class="problem-title">{problem.title}</strong>
            {problem.detail && <span class="problem-detail">{problem.detail}</span>}
            {problem.errors.length > 0 && (
              <ul class="problem-fields">
                {problem.errors.map((e) => (
                  <li key={e.field}>
                    <code>{e.field}</code> {e.message}
                  </li>
                ))}
              </ul>
            )}
          </>
        ) : (
          <span>{notice}</span>
        )}
      </div>
      <button type="button" class="ghost small" aria-label="Dismiss" onClick={onDismiss}>
        ✕
      </button>
    </div>
  );
}
