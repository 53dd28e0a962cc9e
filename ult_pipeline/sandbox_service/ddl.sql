-- The sandbox's tables, named like the real service's (TypeORM) tables. Idempotent:
-- run on every boot inside the configured schema (search_path).
CREATE TABLE IF NOT EXISTS migrations (
    id serial PRIMARY KEY,
    "timestamp" bigint NOT NULL,
    name varchar NOT NULL
);

CREATE TABLE IF NOT EXISTS organization (
    organization_id uuid PRIMARY KEY,
    organization_name varchar,
    address1 varchar,
    address2 varchar,
    phone varchar,
    "shortCode" varchar,
    status varchar NOT NULL DEFAULT 'active',
    created_at timestamp NOT NULL DEFAULT now(),
    updated_at timestamp NOT NULL DEFAULT now(),
    deleted_at timestamp,
    "primaryContactUserId" uuid
);

CREATE TABLE IF NOT EXISTS "user" (
    user_id uuid PRIMARY KEY,
    given_name varchar,
    family_name varchar,
    username varchar,
    email varchar,
    phone varchar,
    date_of_birth varchar,
    gender varchar,
    avatar varchar,
    alternate_email varchar,
    alternate_phone varchar,
    "primary" boolean NOT NULL DEFAULT false,
    status varchar NOT NULL DEFAULT 'active',
    created_at timestamp NOT NULL DEFAULT now(),
    updated_at timestamp NOT NULL DEFAULT now(),
    deleted_at timestamp,
    "myOrganizationOrganizationId" uuid REFERENCES organization (organization_id)
);
CREATE INDEX IF NOT EXISTS "IDX_user_email" ON "user" (email);
CREATE INDEX IF NOT EXISTS "IDX_user_username" ON "user" (username);
CREATE INDEX IF NOT EXISTS "IDX_user_my_organization" ON "user" ("myOrganizationOrganizationId");

DO $$
BEGIN
    -- user and organization reference each other; the second key is added once.
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint
        WHERE conname = 'FK_organization_primary_contact'
          AND connamespace = current_schema()::regnamespace
    ) THEN
        ALTER TABLE organization ADD CONSTRAINT "FK_organization_primary_contact"
            FOREIGN KEY ("primaryContactUserId") REFERENCES "user" (user_id);
    END IF;
END $$;
CREATE INDEX IF NOT EXISTS "IDX_organization_primary_contact" ON organization ("primaryContactUserId");

CREATE TABLE IF NOT EXISTS organization_ownership (
    user_id uuid NOT NULL REFERENCES "user" (user_id),
    organization_id uuid NOT NULL REFERENCES organization (organization_id),
    status varchar NOT NULL DEFAULT 'active',
    created_at timestamp NOT NULL DEFAULT now(),
    deleted_at timestamp,
    PRIMARY KEY (user_id, organization_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS "IDX_organization_ownership_organization" ON organization_ownership (organization_id);

CREATE TABLE IF NOT EXISTS organization_membership (
    user_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    shortcode varchar,
    join_timestamp timestamp NOT NULL DEFAULT now(),
    status varchar NOT NULL DEFAULT 'active',
    created_at timestamp NOT NULL DEFAULT now(),
    deleted_at timestamp,
    "userUserId" uuid REFERENCES "user" (user_id),
    "organizationOrganizationId" uuid REFERENCES organization (organization_id),
    PRIMARY KEY (user_id, organization_id)
);
CREATE INDEX IF NOT EXISTS "IDX_organization_membership_user" ON organization_membership ("userUserId");
CREATE INDEX IF NOT EXISTS "IDX_organization_membership_organization" ON organization_membership ("organizationOrganizationId", "userUserId");

CREATE TABLE IF NOT EXISTS school (
    school_id uuid PRIMARY KEY,
    school_name varchar NOT NULL,
    shortcode varchar,
    status varchar NOT NULL DEFAULT 'active',
    created_at timestamp NOT NULL DEFAULT now(),
    updated_at timestamp NOT NULL DEFAULT now(),
    deleted_at timestamp,
    "organizationOrganizationId" uuid REFERENCES organization (organization_id)
);
CREATE INDEX IF NOT EXISTS "IDX_school_organization" ON school ("organizationOrganizationId");

CREATE TABLE IF NOT EXISTS school_membership (
    user_id uuid NOT NULL,
    school_id uuid NOT NULL,
    join_timestamp timestamp NOT NULL DEFAULT now(),
    status varchar NOT NULL DEFAULT 'active',
    created_at timestamp NOT NULL DEFAULT now(),
    deleted_at timestamp,
    "userUserId" uuid REFERENCES "user" (user_id),
    "schoolSchoolId" uuid REFERENCES school (school_id),
    PRIMARY KEY (user_id, school_id)
);
CREATE INDEX IF NOT EXISTS "IDX_school_membership_user" ON school_membership ("userUserId");
CREATE INDEX IF NOT EXISTS "IDX_school_membership_school" ON school_membership ("schoolSchoolId", "userUserId");

CREATE TABLE IF NOT EXISTS class (
    class_id uuid PRIMARY KEY,
    class_name varchar,
    shortcode varchar,
    status varchar NOT NULL DEFAULT 'active',
    created_at timestamp NOT NULL DEFAULT now(),
    updated_at timestamp NOT NULL DEFAULT now(),
    deleted_at timestamp,
    "organizationOrganizationId" uuid REFERENCES organization (organization_id)
);
CREATE INDEX IF NOT EXISTS "IDX_class_organization" ON class ("organizationOrganizationId");

CREATE TABLE IF NOT EXISTS school_classes_class (
    "schoolSchoolId" uuid NOT NULL REFERENCES school (school_id) ON DELETE CASCADE,
    "classClassId" uuid NOT NULL REFERENCES class (class_id) ON DELETE CASCADE,
    PRIMARY KEY ("schoolSchoolId", "classClassId")
);
CREATE INDEX IF NOT EXISTS "IDX_school_classes_class_class" ON school_classes_class ("classClassId");

CREATE TABLE IF NOT EXISTS user_classes_studying_class (
    "userUserId" uuid NOT NULL REFERENCES "user" (user_id) ON DELETE CASCADE,
    "classClassId" uuid NOT NULL REFERENCES class (class_id) ON DELETE CASCADE,
    PRIMARY KEY ("userUserId", "classClassId")
);
CREATE INDEX IF NOT EXISTS "IDX_user_classes_studying_class_class" ON user_classes_studying_class ("classClassId");

CREATE TABLE IF NOT EXISTS user_classes_teaching_class (
    "userUserId" uuid NOT NULL REFERENCES "user" (user_id) ON DELETE CASCADE,
    "classClassId" uuid NOT NULL REFERENCES class (class_id) ON DELETE CASCADE,
    PRIMARY KEY ("userUserId", "classClassId")
);
CREATE INDEX IF NOT EXISTS "IDX_user_classes_teaching_class_class" ON user_classes_teaching_class ("classClassId");

CREATE TABLE IF NOT EXISTS role (
    role_id uuid PRIMARY KEY,
    role_name varchar,
    role_description varchar NOT NULL DEFAULT 'System Default Role',
    status varchar NOT NULL DEFAULT 'active',
    system_role boolean NOT NULL DEFAULT false,
    created_at timestamp NOT NULL DEFAULT now(),
    updated_at timestamp NOT NULL DEFAULT now(),
    deleted_at timestamp,
    "organizationOrganizationId" uuid REFERENCES organization (organization_id)
);
CREATE INDEX IF NOT EXISTS "IDX_role_organization" ON role ("organizationOrganizationId");

CREATE TABLE IF NOT EXISTS permission (
    permission_id varchar NOT NULL UNIQUE,
    permission_name varchar PRIMARY KEY,
    permission_category varchar,
    permission_group varchar,
    permission_level varchar,
    permission_description varchar,
    allow boolean NOT NULL DEFAULT true,
    status varchar NOT NULL DEFAULT 'active',
    created_at timestamp NOT NULL DEFAULT now(),
    deleted_at timestamp
);

CREATE TABLE IF NOT EXISTS permission_roles_role (
    "permissionPermissionId" varchar NOT NULL REFERENCES permission (permission_id) ON DELETE CASCADE,
    "roleRoleId" uuid NOT NULL REFERENCES role (role_id) ON DELETE CASCADE,
    PRIMARY KEY ("permissionPermissionId", "roleRoleId")
);
CREATE INDEX IF NOT EXISTS "IDX_permission_roles_role_role" ON permission_roles_role ("roleRoleId");

CREATE TABLE IF NOT EXISTS role_memberships_organization_membership (
    "roleRoleId" uuid NOT NULL REFERENCES role (role_id) ON DELETE CASCADE,
    "organizationMembershipUserId" uuid NOT NULL,
    "organizationMembershipOrganizationId" uuid NOT NULL,
    PRIMARY KEY ("roleRoleId", "organizationMembershipUserId", "organizationMembershipOrganizationId"),
    FOREIGN KEY ("organizationMembershipUserId", "organizationMembershipOrganizationId")
        REFERENCES organization_membership (user_id, organization_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS "IDX_role_memberships_organization_membership_membership"
    ON role_memberships_organization_membership ("organizationMembershipUserId", "organizationMembershipOrganizationId");

CREATE TABLE IF NOT EXISTS role_school_memberships_school_membership (
    "roleRoleId" uuid NOT NULL REFERENCES role (role_id) ON DELETE CASCADE,
    "schoolMembershipUserId" uuid NOT NULL,
    "schoolMembershipSchoolId" uuid NOT NULL,
    PRIMARY KEY ("roleRoleId", "schoolMembershipUserId", "schoolMembershipSchoolId"),
    FOREIGN KEY ("schoolMembershipUserId", "schoolMembershipSchoolId")
        REFERENCES school_membership (user_id, school_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS "IDX_role_school_memberships_school_membership_membership"
    ON role_school_memberships_school_membership ("schoolMembershipUserId", "schoolMembershipSchoolId");

CREATE TABLE IF NOT EXISTS program (
    id uuid PRIMARY KEY,
    name varchar NOT NULL,
    system boolean NOT NULL DEFAULT false,
    status varchar NOT NULL DEFAULT 'active',
    created_at timestamp NOT NULL DEFAULT now(),
    deleted_at timestamp,
    organization_id uuid REFERENCES organization (organization_id)
);
CREATE INDEX IF NOT EXISTS "IDX_program_organization" ON program (organization_id);

CREATE TABLE IF NOT EXISTS age_range (
    id uuid PRIMARY KEY,
    name varchar NOT NULL,
    low_value integer NOT NULL,
    high_value integer NOT NULL,
    low_value_unit varchar NOT NULL,
    high_value_unit varchar NOT NULL,
    system boolean NOT NULL DEFAULT false,
    status varchar NOT NULL DEFAULT 'active',
    created_at timestamp NOT NULL DEFAULT now(),
    deleted_at timestamp,
    organization_id uuid REFERENCES organization (organization_id)
);
CREATE INDEX IF NOT EXISTS "IDX_age_range_organization" ON age_range (organization_id);

CREATE TABLE IF NOT EXISTS grade (
    id uuid PRIMARY KEY,
    name varchar NOT NULL,
    system boolean NOT NULL DEFAULT false,
    status varchar NOT NULL DEFAULT 'active',
    created_at timestamp NOT NULL DEFAULT now(),
    deleted_at timestamp,
    organization_id uuid REFERENCES organization (organization_id),
    "progressFromGradeId" uuid REFERENCES grade (id),
    "progressToGradeId" uuid REFERENCES grade (id)
);
CREATE INDEX IF NOT EXISTS "IDX_grade_organization" ON grade (organization_id);

CREATE TABLE IF NOT EXISTS subject (
    id uuid PRIMARY KEY,
    name varchar NOT NULL,
    system boolean NOT NULL DEFAULT false,
    status varchar NOT NULL DEFAULT 'active',
    created_at timestamp NOT NULL DEFAULT now(),
    deleted_at timestamp,
    organization_id uuid REFERENCES organization (organization_id)
);
CREATE INDEX IF NOT EXISTS "IDX_subject_organization" ON subject (organization_id);

CREATE TABLE IF NOT EXISTS category (
    id uuid PRIMARY KEY,
    name varchar NOT NULL,
    system boolean NOT NULL DEFAULT false,
    status varchar NOT NULL DEFAULT 'active',
    created_at timestamp NOT NULL DEFAULT now(),
    deleted_at timestamp,
    organization_id uuid REFERENCES organization (organization_id)
);
CREATE INDEX IF NOT EXISTS "IDX_category_organization" ON category (organization_id);

CREATE TABLE IF NOT EXISTS subcategory (
    id uuid PRIMARY KEY,
    name varchar NOT NULL,
    system boolean NOT NULL DEFAULT false,
    status varchar NOT NULL DEFAULT 'active',
    created_at timestamp NOT NULL DEFAULT now(),
    deleted_at timestamp,
    organization_id uuid REFERENCES organization (organization_id)
);
CREATE INDEX IF NOT EXISTS "IDX_subcategory_organization" ON subcategory (organization_id);
