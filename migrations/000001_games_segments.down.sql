DROP TABLE segment_members;
ALTER TABLE segments DROP CONSTRAINT segments_member_list_fk;
DROP TABLE member_lists;
DROP TABLE segments;
DROP TABLE games;
