package sftest

import (
	"net/http"
	"sort"
	"strings"
	"time"
)

// The replication windows, as Salesforce serves them (REST API developer guide, "sObject Get Updated"
// and "sObject Get Deleted"; SOAP API getUpdated()/getDeleted() "Rules and Guidelines";
// next-capabilities.md §3.3):
//
//   - GET sobjects/{SObject}/updated/?start=&end= answers {"ids":[…], "latestDateCovered"} and
//     GET …/deleted/ answers {"deletedRecords":[{"id","deletedDate"}], "earliestDateAvailable",
//     "latestDateCovered"}; dates are written "2013-05-07T22:07:19.000+0000";
//   - the seconds of start and end are dropped ("12:30:15 is 12:30:00 UTC"): a change at 12:30:40 is
//     in no window that ends at 12:30:59, only in one that ends at 12:31 or later;
//   - start must precede end (after the seconds are dropped), and lie no more than 30 days back for
//     updated and 15 for deleted; otherwise 400 INVALID_REPLICATION_DATE; a start or end that is no
//     dateTime is 400 too;
//   - latestDateCovered is at most end: the last minute the answer is complete for, which the next call
//     must start from; earliestDateAvailable is the oldest deletion the org still has (the Recycle Bin
//     can be emptied, and a large delete log is purged), and when it is after the caller's last sync the
//     caller must resync in full;
//   - more ids than IDLimit (600,000) is 400 EXCEEDED_ID_LIMIT: the caller must narrow the window;
//   - the ids are of records the calling user may see; neither window says who made a change (that is
//     only in Change Data Capture's changeOrigin, §3.5): the fake keeps each write's client id (Origin)
//     but, like Salesforce, does not answer it here.

func sfTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000+0000") }

// PurgeDeleted empties the Recycle Bin and the delete log, as an admin (or Salesforce's purge of a large
// log) does: deletions before now are no longer reported, and earliestDateAvailable moves to now.
func (s *Server) PurgeDeleted() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.earliestDeleted = s.now().UTC().Truncate(time.Minute)
	for _, recs := range s.records {
		for id, r := range recs {
			if r.deleted {
				delete(recs, id)
			}
		}
	}
}

// replication serves the windows; false when path is none of them.
func (s *Server) replication(w http.ResponseWriter, r *http.Request, path string) bool {
	rest, ok := strings.CutPrefix(path, "/sobjects/")
	if !ok || r.Method != http.MethodGet {
		return false
	}
	object, kind, _ := strings.Cut(strings.TrimSuffix(rest, "/"), "/")
	if kind != "updated" && kind != "deleted" {
		return false
	}
	if _, ok := objects[object]; !ok {
		restError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return true
	}
	q := r.URL.Query()
	start, err1 := time.Parse(time.RFC3339, q.Get("start"))
	end, err2 := time.Parse(time.RFC3339, q.Get("end"))
	if err1 != nil || err2 != nil {
		restError(w, http.StatusBadRequest, "INVALID_REPLICATION_DATE", "start and end must be dateTime values")
		return true
	}
	start, end = start.UTC().Truncate(time.Minute), end.UTC().Truncate(time.Minute)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	back := 30 * 24 * time.Hour
	if kind == "deleted" {
		back = 15 * 24 * time.Hour
	}
	switch {
	case !start.Before(end):
		restError(w, http.StatusBadRequest, "INVALID_REPLICATION_DATE", "EndDate must chronologically follow StartDate")
		return true
	case start.Before(now.Add(-back).Truncate(time.Minute)):
		restError(w, http.StatusBadRequest, "INVALID_REPLICATION_DATE", "startDate cannot be more than "+
			map[bool]string{true: "15", false: "30"}[kind == "deleted"]+" days ago")
		return true
	}
	latest := end
	if n := now.Truncate(time.Minute); n.Before(latest) {
		latest = n // nothing after the current minute is complete yet
	}
	in := func(t time.Time) bool { return !t.Before(start) && t.Before(latest) }
	var recs []*record
	for _, rec := range s.obj(object) {
		if rec.deleted == (kind == "deleted") && in(rec.modified) {
			recs = append(recs, rec)
		}
	}
	limit := s.IDLimit
	if limit <= 0 {
		limit = 600000
	}
	if len(recs) > limit {
		// "If more than 600,000 IDs are found, EXCEEDED_ID_LIMIT is returned. You can correct the error by
		// choosing start and end dates that are closer together." The status is not documented; a refused
		// request's is 400.
		restError(w, http.StatusBadRequest, "EXCEEDED_ID_LIMIT", "record limit reached; narrow the window")
		return true
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].id < recs[j].id })
	if kind == "updated" {
		ids := []string{}
		for _, rec := range recs {
			ids = append(ids, rec.id)
		}
		writeJSON(w, http.StatusOK, map[string]any{"ids": ids, "latestDateCovered": sfTime(latest)})
		return true
	}
	dels := []map[string]string{}
	for _, rec := range recs {
		dels = append(dels, map[string]string{"id": rec.id, "deletedDate": sfTime(rec.modified)})
	}
	earliest := s.earliestDeleted
	if floor := now.Add(-back).Truncate(time.Minute); earliest.Before(floor) {
		earliest = floor
	}
	writeJSON(w, http.StatusOK, map[string]any{"deletedRecords": dels, "earliestDateAvailable": sfTime(earliest),
		"latestDateCovered": sfTime(latest)})
	return true
}
