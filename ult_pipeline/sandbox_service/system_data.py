"""The built-in rows the real service creates on boot: permissions, system roles, and
system programs, age ranges, grades, subjects, categories and subcategories.

Permission ids are real KidsLoop permission names (`<what>_<number>`); the id and the
name are the same string, as in the real service. Descriptions are written here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PermissionInfo:
    name: str
    category: str
    level: str
    group: str
    description: str


def _p(name: str, category: str, level: str, group: str, description: str) -> PermissionInfo:
    return PermissionInfo(name, category, level, group, description)


PERMISSIONS: tuple[PermissionInfo, ...] = (
    _p("live_100", "Live", "Student", "Access Live", "Open Live"),
    _p("go_live_101", "Live", "Student", "Go Live", "Use the Go Live buttons and links"),
    _p("attend_live_class_as_a_teacher_186", "Live", "Teacher", "Attend Live Class as a Teacher", "Join a class roster and Live as a teacher"),
    _p("attend_live_class_as_a_student_187", "Live", "Student", "Attend Live Class as a Student", "Join a class roster and Live as a student"),
    _p("library_200", "Library", "Teacher", "Access Library", "Open the Library"),
    _p("create_content_page_201", "Library", "Teacher", "Create Content", "Open the create content page"),
    _p("view_org_published_215", "Library", "Student", "Operational", "See the organization's published content"),
    _p("view_my_school_published_218", "Library", "Teacher", "Operational", "See my school's published content"),
    _p("schedule_500", "Schedule", "Student", "Access Schedule", "Open the Schedule"),
    _p("view_my_calendar_510", "Schedule", "Student", "View Calendar", "See my own calendar"),
    _p("create_my_schedule_events_521", "Schedule", "Teacher", "Create Event", "Create events in my own schedule"),
    _p("reports_600", "Reports", "Teacher", "Access Reports", "Open Reports"),
    _p("teacher_reports_603", "Reports", "Teacher", "Reports", "See teacher reports"),
    _p("class_reports_604", "Reports", "Student", "Reports", "See class reports"),
    _p("student_reports_605", "Reports", "Student", "Reports", "See student reports"),
    _p("view_my_reports_614", "Reports", "Student", "Reports", "See my own reports"),
    _p("organizational_profile_10100", "Accounts", "Student", "Organizational Profile", "Open the organizational profile"),
    _p("view_all_organization_details_page_10101", "Accounts", "Student", "Organizational Profile", "Open the organization details page"),
    _p("view_my_organization_profile_10111", "Accounts", "Student", "Organizational Profile", "See my organization's profile"),
    _p("view_organization_details_10112", "Accounts", "Student", "Organizational Profile", "See organization details"),
    _p("create_own_organization_10220", "Accounts", "Student", "Organizational Profile", "Create an organization of my own"),
    _p("edit_my_organization_10331", "Accounts", "Org Admin", "Organizational Profile", "Edit my organization"),
    _p("join_organization_10881", "Accounts", "Student", "Organizational Profile", "Join an organization"),
    _p("leave_organization_10882", "Accounts", "Student", "Organizational Profile", "Leave an organization"),
    _p("school_resources_20100", "Academic Profile", "Teacher", "School Resources", "Open school resources"),
    _p("view_school_20110", "Academic Profile", "Org Admin", "Schools", "See every school of the organization"),
    _p("view_program_20111", "Academic Profile", "Student", "Programs", "See programs"),
    _p("view_age_range_20112", "Academic Profile", "Teacher", "Age Ranges", "See age ranges"),
    _p("view_grades_20113", "Academic Profile", "Teacher", "Grades", "See grades"),
    _p("view_classes_20114", "Academic Profile", "Org Admin", "Classes", "See every class of the organization"),
    _p("view_subjects_20115", "Academic Profile", "Student", "Subjects", "See subjects"),
    _p("view_school_classes_20117", "Academic Profile", "Student", "Classes", "See the classes of my schools"),
    _p("view_my_classes_20118", "Academic Profile", "Student", "Classes", "See the classes I study or teach"),
    _p("view_my_school_20119", "Academic Profile", "Student", "Schools", "See the schools I belong to"),
    _p("create_school_20220", "Academic Profile", "Org Admin", "Schools", "Create schools"),
    _p("create_class_20224", "Academic Profile", "School Admin", "Classes", "Create classes"),
    _p("add_students_to_class_20225", "Academic Profile", "School Admin", "Classes", "Add students to a class"),
    _p("add_teachers_to_class_20226", "Academic Profile", "School Admin", "Classes", "Add teachers to a class"),
    _p("edit_school_20330", "Academic Profile", "Org Admin", "Schools", "Edit schools and their members"),
    _p("edit_class_20334", "Academic Profile", "School Admin", "Classes", "Edit classes"),
    _p("move_students_to_another_class_20335", "Academic Profile", "School Admin", "Classes", "Move students to another class"),
    _p("move_teachers_to_another_class_20340", "Academic Profile", "School Admin", "Classes", "Move teachers to another class"),
    _p("delete_class_20444", "Academic Profile", "Org Admin", "Classes", "Delete classes"),
    _p("delete_student_from_class_roster_20445", "Academic Profile", "School Admin", "Classes", "Remove students from a class roster"),
    _p("delete_teacher_from_class_20446", "Academic Profile", "School Admin", "Classes", "Remove teachers from a class"),
    _p("roles_and_permissions_30100", "Accounts", "Org Admin", "Roles", "Open roles and permissions"),
    _p("view_roles_and_permissions_30110", "Accounts", "Org Admin", "Roles", "See roles and their permissions"),
    _p("users_40100", "Accounts", "Teacher", "Users", "Open users"),
    _p("view_user_page_40101", "Accounts", "School Admin", "Users", "Open the users page"),
    _p("view_users_40110", "Accounts", "Org Admin", "Users", "See every user of the organization"),
    _p("view_my_school_users_40111", "Accounts", "School Admin", "Users", "See the users of my schools"),
    _p("view_my_class_users_40112", "Accounts", "Teacher", "Users", "See the users of the classes I teach"),
    _p("view_my_users_40113", "Accounts", "Student", "Users", "See my own profiles"),
    _p("create_users_40220", "Accounts", "School Admin", "Users", "Create users"),
    _p("edit_users_40330", "Accounts", "School Admin", "Users", "Edit users"),
    _p("delete_users_40440", "Accounts", "Org Admin", "Users", "Delete users from the organization"),
    _p("delete_my_school_users_40441", "Accounts", "School Admin", "Users", "Delete users from a school"),
    _p("send_invitation_40882", "Accounts", "Org Admin", "Users", "Add users to the organization"),
    _p("deactivate_user_40883", "Accounts", "Org Admin", "Users", "Deactivate users of the organization"),
    _p("reactivate_user_40884", "Accounts", "Org Admin", "Users", "Reactivate users of the organization"),
    _p("deactivate_my_school_user_40885", "Accounts", "School Admin", "Users", "Deactivate users of a school"),
    _p("reactivate_my_school_user_40886", "Accounts", "School Admin", "Users", "Reactivate users of a school"),
    _p("online_support_60101", "Support", "Student", "Support", "Use online support"),
    _p("use_free_as_recommended_content_for_study_81008", "Library", "Student", "Free Programs", "Study free recommended content"),
)

PERMISSION_NAMES = frozenset(p.name for p in PERMISSIONS)

STUDENT_PERMISSIONS = (
    "live_100", "go_live_101", "attend_live_class_as_a_student_187", "view_org_published_215",
    "view_my_school_published_218", "schedule_500", "view_my_calendar_510", "class_reports_604",
    "student_reports_605", "view_my_reports_614", "organizational_profile_10100",
    "view_my_organization_profile_10111", "view_organization_details_10112",
    "create_own_organization_10220", "join_organization_10881", "leave_organization_10882",
    "view_program_20111", "view_subjects_20115", "view_school_classes_20117",
    "view_my_classes_20118", "view_my_school_20119", "view_my_users_40113",
    "online_support_60101", "use_free_as_recommended_content_for_study_81008",
)

PARENT_PERMISSIONS = (
    "live_100", "go_live_101", "attend_live_class_as_a_student_187", "view_org_published_215",
    "schedule_500", "view_my_calendar_510", "reports_600", "student_reports_605",
    "view_my_organization_profile_10111", "create_own_organization_10220",
    "join_organization_10881", "leave_organization_10882", "view_program_20111",
    "view_subjects_20115", "view_school_classes_20117", "view_my_classes_20118",
    "view_my_school_20119", "view_my_users_40113",
)

TEACHER_PERMISSIONS = (
    "live_100", "go_live_101", "attend_live_class_as_a_teacher_186", "library_200",
    "create_content_page_201", "view_org_published_215", "view_my_school_published_218",
    "schedule_500", "view_my_calendar_510", "create_my_schedule_events_521", "reports_600",
    "teacher_reports_603", "class_reports_604", "student_reports_605", "view_my_reports_614",
    "organizational_profile_10100", "view_my_organization_profile_10111",
    "view_organization_details_10112", "join_organization_10881", "leave_organization_10882",
    "school_resources_20100", "view_program_20111", "view_age_range_20112", "view_grades_20113",
    "view_subjects_20115", "view_school_classes_20117", "view_my_classes_20118",
    "view_my_school_20119", "users_40100", "view_my_class_users_40112", "view_my_users_40113",
    "online_support_60101",
)

# The write permissions follow MUTATIONS.md's table: a School Admin may create, edit and fill
# classes (add, remove, move students and teachers) and manage school memberships, but not
# delete classes, edit users (edit_users_40330, refused live) nor change organization memberships.
SCHOOL_ADMIN_PERMISSIONS = TEACHER_PERMISSIONS + (
    "view_my_school_users_40111", "view_user_page_40101", "create_class_20224",
    "add_students_to_class_20225", "add_teachers_to_class_20226", "edit_class_20334",
    "delete_student_from_class_roster_20445", "delete_teacher_from_class_20446",
    "move_students_to_another_class_20335", "move_teachers_to_another_class_20340",
    "deactivate_my_school_user_40885", "reactivate_my_school_user_40886", "delete_my_school_users_40441",
    "create_users_40220",
)

# The organization's admin may do everything the catalog knows.
ORGANIZATION_ADMIN_PERMISSIONS = tuple(p.name for p in PERMISSIONS)

SYSTEM_ROLES: dict[str, tuple[str, ...]] = {
    "Organization Admin": ORGANIZATION_ADMIN_PERMISSIONS,
    "School Admin": SCHOOL_ADMIN_PERMISSIONS,
    "Parent": PARENT_PERMISSIONS,
    "Student": STUDENT_PERMISSIONS,
    "Teacher": TEACHER_PERMISSIONS,
}

SYSTEM_ROLE_DESCRIPTIONS = {
    "Organization Admin": "System Default Role",
    "School Admin": "System Default Role",
    "Parent": "System Default Role",
    "Student": "System Default Role",
    "Teacher": "System Default Role",
}

# Tables with a `system` flag and the names of their built-in rows.
SYSTEM_PROGRAMS = ("None Specified", "Bada Rhyme", "Bada Genius", "Bada Math", "Bada STEM")
SYSTEM_GRADES = ("None Specified", "PreK-1", "PreK-2", "Kindergarten", "Grade 1")
SYSTEM_SUBJECTS = ("None Specified", "Language/Literacy", "Math", "Science")
SYSTEM_CATEGORIES = ("None Specified", "Speech & Language Skills", "Fine Motor Skills", "Cognitive Skills")
SYSTEM_SUBCATEGORIES = ("None Specified", "Speaking & Listening", "Phonics", "Counting and Operations")
# (name, low, high, unit)
SYSTEM_AGE_RANGES = (
    ("None Specified", 0, 99, "year"),
    ("3 - 4 year(s)", 3, 4, "year"),
    ("4 - 5 year(s)", 4, 5, "year"),
    ("5 - 6 year(s)", 5, 6, "year"),
    ("6 - 7 year(s)", 6, 7, "year"),
)

# The record a fresh database gets in `migrations`, standing for the real service's history.
BASELINE_MIGRATION = (1628677180503, "InitialState1628677180503")


def check_catalog() -> None:
    """Every role permission exists in the catalog (a typo would silently deny)."""
    for role, names in SYSTEM_ROLES.items():
        unknown = set(names) - PERMISSION_NAMES
        if unknown:
            raise ValueError(f"role {role} names unknown permissions: {sorted(unknown)}")
