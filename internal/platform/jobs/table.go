package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// TableJobs holds one row per job and partition: its lease and checkpoint.
const TableJobs = "jobs"

// Tables are the tables the job runner owns.
var Tables = []tables.Spec{tables.SpecOf[Job](TableJobs, "platform/jobs", tables.RetainTenantData)}

// OpenLeases returns the jobs table of db.
func OpenLeases(db *tables.DB) *Leases { return &Leases{tables.New[Job](db, TableJobs)} }

// Job is the lease and checkpoint of one job for one tenant (table jobs).
type Job struct {
	Name          string `table:"key"` // key, e.g. "renew-subscriptions"
	LeaseOwner    string // instance id holding the lease
	LeaseUntil    time.Time
	Checkpoint    string // opaque resume point (continuation token, delta link)
	Runs          int
	LastRunAt     time.Time
	LastSuccessAt time.Time
	LastError     string // our error code, never a message with data in it
}

func (j *Job) RowKey() (string, error)   { return tables.SimpleKey("job name", j.Name) }
func (j *Job) SetRowKey(rk string) error { j.Name = rk; return nil }

var (
	// ErrLeaseHeld: another owner holds an unexpired lease on the job.
	ErrLeaseHeld = errors.New("lease held by another owner")
	// ErrLeaseLost: the caller's lease expired and someone else took it, or it was released.
	ErrLeaseLost = errors.New("lease lost")
)

// Leases is the jobs table: it holds per-tenant job leases and checkpoints, so that timer and queue work can overlap, run
// twice or die midway without doing the same tenant twice at once or losing its place.
type Leases struct {
	*tables.Table[Job, *Job]
}

// AcquireLease takes (or, for the same owner, extends) the lease on the job for ttl. It returns
// ErrLeaseHeld while someone else's lease runs. The ETag check makes exactly one of racing owners win.
func (j *Leases) AcquireLease(ctx context.Context, tenant core.TenantID, name, owner string, ttl time.Duration) (Job, error) {
	if owner == "" || ttl <= 0 {
		return Job{}, errors.New("acquire lease: owner and a positive ttl are required")
	}
	return j.UpdateOrCreate(ctx, tenant, name, func(job *Job, _ bool) error {
		now := j.Now().UTC()
		held := job.LeaseOwner != "" && job.LeaseUntil.After(now)
		if held && job.LeaseOwner != owner {
			return fmt.Errorf("acquire lease on %s: %w", name, ErrLeaseHeld)
		}
		if !held || job.LeaseOwner != owner {
			job.Runs++
			job.LastRunAt = now
		}
		job.LeaseOwner, job.LeaseUntil = owner, now.Add(ttl)
		return nil
	})
}

// Checkpoint stores progress while owner holds the lease; ErrLeaseLost otherwise.
func (j *Leases) Checkpoint(ctx context.Context, tenant core.TenantID, name, owner, checkpoint string) (Job, error) {
	return j.Update(ctx, tenant, name, func(job *Job) error {
		if err := j.owns(job, owner); err != nil {
			return err
		}
		job.Checkpoint = checkpoint
		return nil
	})
}

// Release ends owner's lease and records the outcome: errCode "" is success. The checkpoint is kept
// (a delta link carries over to the next run); call Checkpoint with "" to clear it.
func (j *Leases) Release(ctx context.Context, tenant core.TenantID, name, owner, errCode string) (Job, error) {
	return j.Update(ctx, tenant, name, func(job *Job) error {
		if err := j.owns(job, owner); err != nil {
			return err
		}
		now := j.Now().UTC()
		job.LeaseOwner, job.LeaseUntil = "", time.Time{}
		job.LastError = errCode
		if errCode == "" {
			job.LastSuccessAt = now
		}
		return nil
	})
}

func (j *Leases) owns(job *Job, owner string) error {
	if job.LeaseOwner != owner || !job.LeaseUntil.After(j.Now()) {
		return fmt.Errorf("job %s: %w", job.Name, ErrLeaseLost)
	}
	return nil
}
