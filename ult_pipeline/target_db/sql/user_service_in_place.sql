-- In-place wipe of the KidsLoop user-service's tenant data (ult-pipeline): the OLD script.
--
-- No longer the default (see ult_pipeline/target_db/in_place.py): on the real service's schema,
-- whose referencing columns are mostly unindexed, its cost grows with the square of the data
-- (20,000 students: 26 to 60 s; 100,000: many minutes). Kept as `--sql-file` example and as the
-- baseline of `python -m ult_pipeline_tests.bench.wipe`.
--
-- Keeps `migrations` and the system rows (permissions, system roles and their links,
-- system programs, age ranges, grades, subjects, categories, subcategories), so the
-- service may keep running. Never `TRUNCATE organization CASCADE`: role, program, grade,
-- subject, category, subcategory and age_range all reference organization, so that would
-- empty the system data too. Tables the service does not have are skipped, so the same
-- file serves the real service (36 tables) and the sandbox.
DO $wipe$
DECLARE
    step text;
    steps text[] := ARRAY[
        -- join tables first
        'DELETE FROM user_classes_studying_class',
        'DELETE FROM user_classes_teaching_class',
        'DELETE FROM school_classes_class',
        'DELETE FROM role_memberships_organization_membership',
        'DELETE FROM role_school_memberships_school_membership',
        'DELETE FROM class_programs_program',
        'DELETE FROM class_age_ranges_age_range',
        'DELETE FROM class_grades_grade',
        'DELETE FROM class_subjects_subject',
        'DELETE FROM school_programs_program',
        'DELETE FROM program_age_ranges_age_range WHERE "programId" IN (SELECT id FROM program WHERE NOT system)',
        'DELETE FROM program_grades_grade WHERE "programId" IN (SELECT id FROM program WHERE NOT system)',
        'DELETE FROM program_subjects_subject WHERE "programId" IN (SELECT id FROM program WHERE NOT system)',
        'DELETE FROM subject_categories_category WHERE "subjectId" IN (SELECT id FROM subject WHERE NOT system)',
        'DELETE FROM category_subcategories_subcategory WHERE "categoryId" IN (SELECT id FROM category WHERE NOT system)',
        'DELETE FROM permission_roles_role WHERE "roleRoleId" IN (SELECT role_id FROM role WHERE NOT system_role)',
        -- memberships
        'DELETE FROM school_membership',
        'DELETE FROM organization_membership',
        'DELETE FROM organization_ownership',
        -- tenant entities
        'DELETE FROM attendance',
        'DELETE FROM class',
        'DELETE FROM academic_term',
        'DELETE FROM school',
        'DELETE FROM role WHERE NOT system_role',
        'DELETE FROM program WHERE NOT system',
        'DELETE FROM subject WHERE NOT system',
        'DELETE FROM subcategory WHERE NOT system',
        'DELETE FROM category WHERE NOT system',
        'DELETE FROM grade WHERE NOT system',
        'DELETE FROM age_range WHERE NOT system',
        'DELETE FROM branding_image',
        'DELETE FROM branding',
        -- user and organization reference each other
        'UPDATE "user" SET "myOrganizationOrganizationId" = NULL',
        'DELETE FROM organization',
        'DELETE FROM "user"'
    ];
    target text;
BEGIN
    FOREACH step IN ARRAY steps LOOP
        target := substring(step FROM '(?:FROM|UPDATE) ("?[a-z_]+"?)');
        IF to_regclass(target) IS NOT NULL THEN
            BEGIN
                EXECUTE step;
            EXCEPTION WHEN undefined_column THEN
                -- A table of another shape than expected: leave it, the next steps tell.
                RAISE NOTICE 'ult wipe: skipped (%): %', SQLERRM, step;
            END;
        END IF;
    END LOOP;
END
$wipe$;
