-- recoverable_energy: the IT energy beyond what the same useful work needs at a reference MFU
-- (DESIGN.md: E_IT x max(0, 1 - MFU / m_ref), applied per tick and summed), in total for the
-- facility and per campus and GPU generation, in MWh and dollars at each tick's price.
-- With m_ref = 0.40 this recomputes the twin's recoverable_j column (twin_recoverable_mwh).
-- params: run_id (text), m_ref (number, default 0.40)
SELECT
    scope,
    scope_id,
    count(*)                                                   AS ticks,
    sum(flops) / nullif(sum(peak_flops), 0)                    AS mfu,
    sum(it_energy_j) / 3.6e9                                   AS it_mwh,
    sum(it_energy_j * greatest(0, 1 - mfu / $m_ref)) / 3.6e9  AS recoverable_mwh,
    sum(it_energy_j * greatest(0, 1 - mfu / $m_ref) * energy_usd / nullif(energy_j, 0))
                                                               AS recoverable_usd,
    sum(it_energy_j * greatest(0, 1 - mfu / $m_ref)) / nullif(sum(it_energy_j), 0)
                                                               AS recoverable_share,
    sum(recoverable_j) / 3.6e9                                 AS twin_recoverable_mwh
FROM kpi
WHERE run_id = $run_id AND scope IN ('facility', 'campus', 'generation')
GROUP BY scope, scope_id
ORDER BY list_position(['facility', 'campus', 'generation'], scope), recoverable_mwh DESC;
