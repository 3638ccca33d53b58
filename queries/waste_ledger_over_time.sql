-- waste_ledger_over_time: the energy ledger by cause in buckets of event time (default: one
-- UTC calendar day per bucket), in MWh and dollars, with the rates per day over the time each
-- bucket covers (a 2-minute run still gets MWh/day and $/day). Buckets are aligned to UTC
-- midnight (multiples of bucket_s since the epoch); a tick lands in the bucket holding its last
-- instant; event_time is the bucket's start. bucket_s = 0 gives one row per tick and cause
-- (event_time = the tick's start).
-- params: run_id (text), bucket_s (number, default 86400)
WITH b AS (
    SELECT *,
        CASE WHEN CAST($bucket_s AS DOUBLE) > 0
             THEN CAST(floor((tick_end_ns - 1) / (CAST($bucket_s AS DOUBLE) * 1e9))
                       * CAST($bucket_s AS DOUBLE) * 1e9 AS BIGINT)
             ELSE tick_end_ns - CAST(dt_s * 1e9 AS BIGINT) END AS bucket_ns
    FROM ledger
    WHERE run_id = $run_id
)
SELECT
    make_timestamp(bucket_ns // 1000)                          AS event_time,
    cause,
    count(*)                                                   AS ticks,
    sum(dt_s) / 3600                                           AS hours_covered,
    sum(energy_j) / 3.6e9                                      AS mwh,
    sum(cost_usd)                                              AS usd,
    sum(energy_j) / 3.6e9 * 86400 / nullif(sum(dt_s), 0)       AS mwh_per_day,
    sum(cost_usd) * 86400 / nullif(sum(dt_s), 0)               AS usd_per_day
FROM b
GROUP BY bucket_ns, cause
ORDER BY bucket_ns,
         list_position(['useful', 'kernel_inefficiency', 'straggler_wait', 'comm_stall',
                        'allocated_idle', 'unallocated', 'down', 'overhead'], cause);
