        SELECT conname
           FROM  pg_catalog.pg_constraint r
           WHERE r.conrelid = 16389 AND r.contype = 'p'
           ORDER BY 1
        
