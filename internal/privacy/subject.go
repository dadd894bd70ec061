package privacy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// PersonalData is what a module answers for the rows it holds about one person. Export lists them with
// sealed fields opened. Erase removes them, or, where a row must stay (the audit trail, a tenant's
// settings), removes the person from it; it answers how many rows it deleted or changed. Both are
// scoped to one tenant. Declared here, implemented by each module, wired in internal/app.
type PersonalData interface {
	// Answers names the tables this answer covers, so a module's new table with personal fields is
	// uncovered until its module says it answers for it too.
	Answers() []string
	Export(ctx context.Context, tenant core.TenantID, userID string) ([]tables.Record, error)
	Erase(ctx context.Context, tenant core.TenantID, userID string) (tables.Erasure, error)
}

// Source is one module's answer, named as the catalogue names the module that owns the tables.
type Source struct {
	Module string
	Data   PersonalData
}

// Uncovered lists the catalogue's tables that hold personal fields but that no answer of their owning
// module covers: a person's export would miss those rows and an erasure would leave them behind.
func Uncovered(cat tables.Catalogue, sources []Source) []string {
	var out []string
	for _, spec := range cat {
		if len(spec.Personal()) == 0 {
			continue
		}
		if !slices.ContainsFunc(sources, func(s Source) bool {
			return s.Module == spec.Module && s.Data != nil && slices.Contains(s.Data.Answers(), spec.Name)
		}) {
			out = append(out, fmt.Sprintf("%s (module %s: %s)", spec.Name, spec.Module, strings.Join(spec.Personal(), ", ")))
		}
	}
	return out
}

// Subjects runs a person's export and erasure across every module.
type Subjects struct {
	sources     []Source
	cat         tables.Catalogue
	withdrawers []Withdrawer
	log         *slog.Logger
}

// Withdrawer takes back what a module wrote about a person outside ConnectHub — a Teams presence
// session it set for them from a PBX call — before the person's rows go (they say what to take back).
// A failure does not stop the erasure: the person's right to it comes first, and what was written
// outside lapses by itself (a presence session within its length); it is logged.
type Withdrawer interface {
	Withdraw(ctx context.Context, tenant core.TenantID, userID string) error
}

// Withdraw registers w, run by every Erase before the modules' rows are erased. Wiring only: not safe
// to call while erasures run.
func (s *Subjects) Withdraw(w Withdrawer, log *slog.Logger) {
	s.withdrawers = append(s.withdrawers, w)
	s.log = log
}

// NewSubjects checks that every table holding personal fields has a module answering for it, so that
// a gap stops the handler at start rather than showing up as an incomplete export.
func NewSubjects(cat tables.Catalogue, sources []Source) (*Subjects, error) {
	if gaps := Uncovered(cat, sources); len(gaps) > 0 {
		return nil, fmt.Errorf("privacy: no module answers for the personal data in %s", strings.Join(gaps, "; "))
	}
	var undescribed []string
	for _, spec := range cat {
		if _, ok := Categories[spec.Name]; !ok && len(spec.Personal()) > 0 {
			undescribed = append(undescribed, spec.Name)
		}
	}
	if len(undescribed) > 0 {
		return nil, fmt.Errorf("privacy: no category describes the personal data in %s (privacy.Categories)", strings.Join(undescribed, ", "))
	}
	return &Subjects{sources: slices.Clone(sources), cat: cat}, nil
}

// Export lists every row any module holds about the person, module by module.
func (s *Subjects) Export(ctx context.Context, tenant core.TenantID, userID string) ([]tables.Record, error) {
	if err := tables.CheckTenant(tenant); err != nil {
		return nil, err
	}
	userID, err := core.ParseObjectID(userID)
	if err != nil {
		return nil, err
	}
	var out []tables.Record
	for _, src := range s.sources {
		recs, err := src.Data.Export(ctx, tenant, userID)
		if err != nil {
			return nil, fmt.Errorf("export %s: %w", src.Module, err)
		}
		out = append(out, recs...)
	}
	return out, nil
}

// Erase removes the person from every module and answers the rows deleted or rewritten per table. It
// carries on past a failing module and returns every failure joined, so a retry has only the
// remainder to do (each module's erasure is idempotent).
func (s *Subjects) Erase(ctx context.Context, tenant core.TenantID, userID string) (tables.Erasure, error) {
	if err := tables.CheckTenant(tenant); err != nil {
		return nil, err
	}
	userID, err := core.ParseObjectID(userID)
	if err != nil {
		return nil, err
	}
	for _, w := range s.withdrawers {
		if err := w.Withdraw(ctx, tenant, userID); err != nil && s.log != nil {
			s.log.WarnContext(ctx, "erasure: what was written outside ConnectHub could not be withdrawn; it lapses by itself", "error", err)
		}
	}
	counts := tables.Erasure{}
	var errs []error
	for _, src := range s.sources {
		n, err := src.Data.Erase(ctx, tenant, userID)
		counts.Merge(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("erase %s: %w", src.Module, err))
		}
	}
	return counts, errors.Join(errs...)
}
