-- recoverable_over_time: the facility's recoverable energy against a reference MFU (DESIGN.md:
-- E_IT x max(0, 1 - MFU / m_ref) per tick) over event time, per tick or in buckets of
-- bucket_s seconds, with its dollars and the running total since the run's first tick.
-- params: run_id (text), m_ref (number, default 0.40), bucket_s (number, default 0 = per tick)
WITH k AS (
    SELECT *, min(tick_start_ns) OVER () AS t0,
           it_energy_j * greatest(0, 1 - mfu / $m_ref) AS rec_j
    FROM kpi
    WHERE run_id = $run_id AND scope = 'facility'
),
b AS (
    SELECT
        CASE WHEN CAST($bucket_s AS DOUBLE) > 0
             THEN t0 + CAST(floor((tick_start_ns - t0) / (CAST($bucket_s AS DOUBLE) * 1e9))
                            * CAST($bucket_s AS DOUBLE) * 1e9 AS BIGINT)
             ELSE tick_start_ns END                            AS bucket_ns,
        any_value(t0)                                          AS t0,
        count(*)                                               AS ticks,
        sum(flops) / nullif(sum(peak_flops), 0)                AS mfu,
        sum(it_energy_j) / 3.6e9                               AS it_mwh,
        sum(rec_j) / 3.6e9                                     AS recoverable_mwh,
        sum(rec_j * energy_usd / nullif(energy_j, 0))          AS recoverable_usd
    FROM k
    GROUP BY bucket_ns
)
SELECT
    make_timestamp(bucket_ns // 1000)                          AS event_time,
    (bucket_ns - t0) / 1e9                                     AS t_s,
    ticks, mfu, it_mwh, recoverable_mwh, recoverable_usd,
    sum(recoverable_mwh) OVER (ORDER BY bucket_ns)             AS cumulative_mwh,
    sum(recoverable_usd) OVER (ORDER BY bucket_ns)             AS cumulative_usd
FROM b
ORDER BY bucket_ns;
